/** `npm run eval`: named now so the command stays stable; the trainer arrives with issue 6 (GRPO). */
console.error('npm run eval: not available yet: the GRPO trainer and evaluation land with issue 6.');
process.exit(2);
