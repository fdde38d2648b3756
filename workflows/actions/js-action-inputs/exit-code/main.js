// Exits with INPUT_CODE, the way an action that found a problem does.
const code = Number(process.env.INPUT_CODE);
console.log(`exiting with ${code}`);
process.exit(code);
