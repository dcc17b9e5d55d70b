/**
 * `npm start`: serves the lab with Vite on 127.0.0.1 and prints the URL to open in Chrome.
 */
import { createServer } from 'vite';

const server = await createServer({ configFile: new URL('../vite.config.ts', import.meta.url).pathname });
await server.listen();
server.printUrls();
console.log('Open the URL above in Chrome (WebGPU). Ctrl+C stops the lab.');
