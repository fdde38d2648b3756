const fs = require('node:fs');

console.log(['mark', 'pre', 'with-pre-and-post'].join(':'));
fs.appendFileSync(process.env.GITHUB_ENV, 'ACTION_OUTPUT_PRE=pre\n');
