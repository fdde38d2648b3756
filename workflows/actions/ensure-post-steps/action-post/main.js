console.log(['mark', 'main', process.env.INPUT_LABEL].join(':'));
