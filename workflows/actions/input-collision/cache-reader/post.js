const checkCache = require('./check.js');

const step = checkCache('post');
console.log(['mark', 'post', step].join(':'));
