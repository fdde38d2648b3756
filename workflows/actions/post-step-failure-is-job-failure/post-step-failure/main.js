console.log(['mark', 'main', 'ok'].join(':'));
