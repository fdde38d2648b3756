// Greets INPUT_WHO-TO-GREET (the runner keeps the hyphen of the input's name) and sets outputs.
const fs = require('node:fs');

const who = process.env['INPUT_WHO-TO-GREET'];
if (who === undefined) throw new Error('INPUT_WHO-TO-GREET is not set');
const major = Number(process.versions.node.split('.')[0]);
if (major < 20) throw new Error(`a node20 action needs Node.js 20 or later, got ${process.version}`);

const payload = JSON.parse(fs.readFileSync(process.env.GITHUB_EVENT_PATH, 'utf8'));
if (typeof payload !== 'object' || payload === null) throw new Error('GITHUB_EVENT_PATH does not hold a JSON object');

const greeting = `Hello ${who}!`;
console.log(greeting);
const outputs = { greeting, time: new Date().toISOString(), 'event-name': process.env.GITHUB_EVENT_NAME };
for (const [name, value] of Object.entries(outputs)) fs.appendFileSync(process.env.GITHUB_OUTPUT, `${name}=${value}\n`);
