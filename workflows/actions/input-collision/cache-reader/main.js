const fs = require('node:fs');
const checkCache = require('./check.js');

const step = checkCache('main');
// No final newline on purpose: the runner must still read the line.
fs.appendFileSync(process.env.GITHUB_ENV, `LAST_MAIN=${step}`);
