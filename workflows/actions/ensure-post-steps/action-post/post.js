console.log(['mark', 'post', process.env.INPUT_LABEL].join(':'));
if (process.env.INPUT_FAIL === 'true') process.exit(1);
