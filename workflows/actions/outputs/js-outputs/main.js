// GITHUB_OUTPUT's two forms: name=value, and name<<DELIMITER for values with line breaks.
const fs = require('node:fs');
const { randomUUID } = require('node:crypto');

const delimiter = `ghadelimiter_${randomUUID()}`;
fs.appendFileSync(
  process.env.GITHUB_OUTPUT,
  ['declared=declared-value', 'undeclared=undeclared-value', `poem<<${delimiter}`, 'roses', 'violets', delimiter, ''].join('\n'),
);
