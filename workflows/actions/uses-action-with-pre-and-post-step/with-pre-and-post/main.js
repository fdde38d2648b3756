const fs = require('node:fs');

console.log(['mark', 'main', 'with-pre-and-post'].join(':'));
fs.appendFileSync(process.env.GITHUB_ENV, 'ACTION_OUTPUT_MAIN=main\n');
