// The docs site: English at /, Chinese at /zh/. Built by `npm run docs:build` (dead links fail the
// build); the reference pages marked "generated" are written by `npm run docs:reference` from the code.
import { defineConfig, type DefaultTheme } from 'vitepress';

/** The site's sections and pages, with their titles in English and, for start and integrate, in Chinese. */
const SECTIONS: { en: string; zh: string; pages: [path: string, en: string, zh?: string][] }[] = [
  {
    en: 'Start',
    zh: '开始',
    pages: [
      ['/start/quickstart', 'Quickstart', '快速上手'],
      ['/start/sandbox', "Alipay's sandbox", '支付宝沙箱'],
      ['/start/troubleshooting', 'Troubleshooting', '常见问题'],
    ],
  },
  {
    en: 'Integrate',
    zh: '接入',
    pages: [
      ['/integrate/payments', 'Payments', '收款'],
      ['/integrate/signing', 'Signing requests', '请求签名'],
      ['/integrate/webhooks', 'Webhooks', 'Webhook 通知'],
      ['/integrate/refunds', 'Refunds', '退款'],
      ['/integrate/late-payments', 'Late payments', '迟到的付款'],
      ['/integrate/cashier', 'Cashier page', '收银台页面'],
      ['/integrate/rate-limits', 'Rate limits', '限流'],
    ],
  },
  {
    en: 'Reference',
    zh: '参考（英文）',
    pages: [
      ['/reference/api', 'API'],
      ['/reference/configuration', 'Configuration'],
      ['/reference/errors', 'Error codes'],
      ['/reference/events', 'Webhook events'],
      ['/reference/cli', 'Merchant CLI'],
      ['/reference/metrics', 'Metrics and logs'],
      ['/reference/tracing', 'Traces'],
    ],
  },
  {
    en: 'Operate',
    zh: '运维（英文）',
    pages: [
      ['/operate/deployment', 'Deployment'],
      ['/operate/kubernetes', 'Kubernetes'],
      ['/operate/runbook', 'On-call runbook'],
      ['/operate/on-call', 'On call: alerts'],
      ['/operate/reconciliation', 'Reconciliation'],
      ['/operate/alipay-apps', 'Alipay apps and certificates'],
      ['/operate/security', 'Security'],
      ['/operate/console', 'Web console'],
      ['/operate/upgrades', 'Upgrades'],
    ],
  },
  {
    en: 'Internals',
    zh: '内部设计（英文）',
    pages: [
      ['/internals/design', 'Design'],
      ['/internals/performance', 'Performance'],
      ['/internals/proof', 'The chaos proof'],
      ['/internals/simulator', 'The simulator'],
    ],
  },
];

/** A page with a Chinese title is in Chinese under /zh/; the others link to the English page. */
function sidebar(lang: 'en' | 'zh'): DefaultTheme.SidebarItem[] {
  return SECTIONS.map((section) => ({
    text: section[lang],
    items: section.pages.map(([path, en, zh]) => (lang === 'zh' && zh ? { text: zh, link: `/zh${path}` } : { text: en, link: path })),
  }));
}

export default defineConfig({
  title: 'durapay',
  description: 'A durable payment engine for Alipay face-to-face payments, on Temporal',
  cleanUrls: true,
  lastUpdated: false,
  // The site is read offline and built without a network: nothing is fetched from elsewhere.
  head: [],
  locales: {
    root: {
      label: 'English',
      lang: 'en',
      themeConfig: { nav: [{ text: 'Guide', link: '/start/quickstart' }, { text: 'API', link: '/reference/api' }], sidebar: sidebar('en') },
    },
    zh: {
      label: '简体中文',
      lang: 'zh-CN',
      link: '/zh/',
      description: '基于 Temporal 的支付宝当面付持久化支付引擎',
      themeConfig: {
        nav: [{ text: '指南', link: '/zh/start/quickstart' }, { text: 'API', link: '/reference/api' }],
        sidebar: sidebar('zh'),
        outline: { label: '本页内容' },
        docFooter: { prev: '上一页', next: '下一页' },
      },
    },
  },
  themeConfig: {
    search: { provider: 'local' },
    outline: { level: [2, 3] },
  },
});
