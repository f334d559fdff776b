// The default theme, with the API page's Swagger UI as a component.
import DefaultTheme from 'vitepress/theme';
import type { Theme } from 'vitepress';
import ApiReference from './ApiReference.vue';

export default {
  extends: DefaultTheme,
  enhanceApp({ app }) {
    app.component('ApiReference', ApiReference);
  },
} satisfies Theme;
