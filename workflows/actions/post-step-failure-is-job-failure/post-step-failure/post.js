console.log(['mark', 'post', 'failing'].join(':'));
process.exit(1);
