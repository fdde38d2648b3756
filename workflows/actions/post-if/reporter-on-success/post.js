console.log(['mark', 'post', process.env.INPUT_LABEL].join(':'));
