import { defineConfig } from 'vite';
import react from '@vitejs/plugin-react';

// Served by the function app under /console (functions/Marketing.Functions/OperatorConsole), so every asset address
// starts there. The build goes to dist/, which the function app's project copies into its output and publish folder.
export default defineConfig({
  base: '/console/',
  plugins: [react()],
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    // Hashed file names: the app serves assets/* as immutable and index.html as no-cache.
    assetsDir: 'assets',
  },
});
