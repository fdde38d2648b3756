// Checks the environment and working directory of a JavaScript action.
const fs = require('node:fs');

function checkEnvVar(name, { equals } = {}) {
  const value = process.env[name];
  if (value === undefined || value === '') throw new Error(`${name} is undefined or empty`);
  if (equals !== undefined && value !== equals) throw new Error(`${name} is ${JSON.stringify(value)}, expected ${JSON.stringify(equals)}`);
  console.log(`${name}=${value}`);
}

const expectedAction = process.env['INPUT_EXPECTED-ACTION'];
checkEnvVar('GITHUB_ACTION', expectedAction ? { equals: expectedAction } : {});
// Only remote actions have a repository and a ref: for a local one they are empty or unset.
for (const name of ['GITHUB_ACTION_REPOSITORY', 'GITHUB_ACTION_REF']) {
  if (process.env[name]) throw new Error(`${name} is ${JSON.stringify(process.env[name])} for a local action`);
}

checkEnvVar('CI', { equals: 'true' });
checkEnvVar('GITHUB_ACTIONS', { equals: 'true' });
for (const name of ['GITHUB_WORKSPACE', 'GITHUB_REPOSITORY', 'GITHUB_SHA', 'GITHUB_REF', 'GITHUB_EVENT_NAME', 'GITHUB_EVENT_PATH', 'RUNNER_TEMP', 'RUNNER_OS', 'HOME']) checkEnvVar(name);
checkEnvVar('GITHUB_JOB', { equals: 'check' });
checkEnvVar('WORKFLOW_LEVEL', { equals: 'from-workflow' });
checkEnvVar('JOB_LEVEL', { equals: 'from-job' });
checkEnvVar('STEP_LEVEL', { equals: 'from-step' });
for (const name of ['GITHUB_ENV', 'GITHUB_OUTPUT', 'GITHUB_PATH', 'GITHUB_STATE', 'GITHUB_STEP_SUMMARY']) {
  checkEnvVar(name);
  if (!fs.statSync(process.env[name]).isFile()) throw new Error(`${name} is not a file`);
}
if (fs.realpathSync(process.cwd()) !== fs.realpathSync(process.env.GITHUB_WORKSPACE)) {
  throw new Error(`the working directory is ${process.cwd()}, not GITHUB_WORKSPACE (${process.env.GITHUB_WORKSPACE})`);
}
