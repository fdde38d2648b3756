// Writes what @actions/core's summary.addRaw(...).write() would, with no toolkit.
const fs = require('node:fs');

const file = process.env.GITHUB_STEP_SUMMARY;
if (!file) throw new Error('GITHUB_STEP_SUMMARY is not set');
if (fs.readFileSync(file, 'utf8') !== '') throw new Error('the step summary file does not start empty');
const summary = [
  '## Workflow Summary',
  `- **Repository**: ${process.env.GITHUB_REPOSITORY}`,
  `- **Branch**: ${process.env.GITHUB_REF}`,
  `- **Commit SHA**: ${process.env.GITHUB_SHA}`,
  `- **Event**: ${process.env.GITHUB_EVENT_NAME}`,
  '',
].join('\n');
console.log('Summary:', summary);
fs.appendFileSync(file, summary);
fs.appendFileSync(process.env.GITHUB_OUTPUT, `file=${file}\n`);
