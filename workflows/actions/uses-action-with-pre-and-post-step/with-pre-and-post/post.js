const fs = require('node:fs');

console.log(['mark', 'post', 'with-pre-and-post'].join(':'));
fs.appendFileSync(process.env.GITHUB_ENV, 'ACTION_OUTPUT_POST=post\n');
