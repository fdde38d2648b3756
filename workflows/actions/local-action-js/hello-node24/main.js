// A node24 action must get Node.js 24 or later.
const fs = require('node:fs');

const major = Number(process.versions.node.split('.')[0]);
if (major < 24) throw new Error(`a node24 action needs Node.js 24 or later, got ${process.version}`);
fs.appendFileSync(process.env.GITHUB_OUTPUT, 'runtime=node24\n');
