/** Lab entry point: the Preact app over the page controller (workers, IndexedDB, state). */
import { h, render } from 'preact';
import { App } from './ui/app.js';
import { Lab } from './ui/lab.js';
import './ui/styles.css';

const lab = new Lab();
render(h(App, { lab }), document.querySelector<HTMLDivElement>('#app')!);
void lab.init();
