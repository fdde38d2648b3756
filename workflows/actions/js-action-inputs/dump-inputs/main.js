// Reports the INPUT_* variables exactly as the runner set them, as one JSON line.
const fs = require('node:fs');

const inputs = Object.fromEntries(Object.entries(process.env).filter(([name]) => name.startsWith('INPUT_')));
console.log(JSON.stringify(inputs, null, 2));
fs.appendFileSync(process.env.GITHUB_OUTPUT, `inputs=${JSON.stringify(inputs)}\n`);
