import { mount } from 'svelte';
import App from './App.svelte';
import { startNavigation } from './lib/navigation.svelte.js';
import { applyTheme, currentTheme } from './lib/theme.js';
import './app.css';

applyTheme(currentTheme(), false);
startNavigation();
const target = document.getElementById('app');
if (target === null) throw new Error('index.html has no #app');
mount(App, { target });
