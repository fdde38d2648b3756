console.log(['mark', 'main', 'last-action'].join(':'));
