// Runs an input as a bash script (bash -e), its output going to the action's own stdout so the
// runner sees workflow commands it prints, and exits with the script's status.
const { spawnSync } = require('node:child_process');

module.exports = function runInput(name) {
  const script = process.env[`INPUT_${name.toUpperCase()}`] ?? '';
  if (script.trim() === '') return;
  const result = spawnSync('bash', ['-e', '-c', script], { stdio: 'inherit' });
  if (result.error) throw result.error;
  if (result.status !== 0) process.exit(result.status ?? 1);
};
