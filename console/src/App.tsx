// The console's shell: antd in the chosen language, the login page for anyone without a session,
// and for a session a menu of the pages its role may open (merchant staff or operators).
import {
  AccountBookOutlined,
  AuditOutlined,
  ClockCircleOutlined,
  ExceptionOutlined,
  LogoutOutlined,
  ShopOutlined,
  ShoppingCartOutlined,
  ApiOutlined,
  KeyOutlined,
  ReconciliationOutlined,
} from '@ant-design/icons';
import { App as AntApp, Button, ConfigProvider, Layout, Menu, Segmented, Space, Spin, Typography } from 'antd';
import enUS from 'antd/locale/en_US';
import zhCN from 'antd/locale/zh_CN';
import { Navigate, Route, Routes, useLocation, useNavigate } from 'react-router-dom';
import { useI18n, type Lang } from './i18n';
import { isOperator, useCurrentSession, useSession } from './session';
import { Forbidden } from './ui';
import { LoginPage } from './pages/Login';
import { OrdersPage } from './pages/Orders';
import { OrderPage } from './pages/Order';
import { WebhooksPage } from './pages/Webhooks';
import { ReviewPage } from './pages/Review';
import { TimelinePage } from './pages/Timeline';
import { AuditPage } from './pages/Audit';
import { MerchantsPage } from './pages/Merchants';
import { ReconciliationsPage } from './pages/Reconciliations';
import { CredentialsPage } from './pages/Credentials';
import { FindingsPage } from './pages/Findings';

export function App() {
  const { lang } = useI18n();
  return (
    <ConfigProvider locale={lang === 'en' ? enUS : zhCN} button={{ autoInsertSpace: false }} theme={{ token: { colorPrimary: '#1677ff' } }}>
      <AntApp>
        <Routed />
      </AntApp>
    </ConfigProvider>
  );
}

function Routed() {
  const { state } = useSession();
  const location = useLocation();
  if (state.status === 'loading') {
    return (
      <div style={{ display: 'flex', height: '100vh', alignItems: 'center', justifyContent: 'center' }}>
        <Spin size="large" />
      </div>
    );
  }
  if (state.status === 'anonymous') {
    return (
      <Routes>
        <Route path="/login" element={<LoginPage reason={state.reason} />} />
        <Route path="*" element={<Navigate to="/login" replace state={{ from: location.pathname + location.search }} />} />
      </Routes>
    );
  }
  const home = isOperator(state.session) ? '/ops/review' : '/orders';
  return (
    <Shell>
      <Routes>
        <Route path="/" element={<Navigate to={home} replace />} />
        <Route path="/login" element={<Navigate to={(location.state as { from?: string } | null)?.from ?? home} replace />} />
        <Route path="/orders" element={<MerchantOnly><OrdersPage /></MerchantOnly>} />
        <Route path="/orders/:outTradeNo" element={<MerchantOnly><OrderPage /></MerchantOnly>} />
        <Route path="/webhooks" element={<MerchantOnly><WebhooksPage /></MerchantOnly>} />
        <Route path="/webhooks/:endpointId" element={<MerchantOnly><WebhooksPage /></MerchantOnly>} />
        <Route path="/credentials" element={<MerchantOnly><CredentialsPage /></MerchantOnly>} />
        <Route path="/reconciliation" element={<MerchantOnly><FindingsPage /></MerchantOnly>} />
        <Route path="/ops/review" element={<OperatorOnly><ReviewPage /></OperatorOnly>} />
        <Route path="/ops/timeline" element={<OperatorOnly><TimelinePage /></OperatorOnly>} />
        <Route path="/ops/timeline/:paymentId" element={<OperatorOnly><TimelinePage /></OperatorOnly>} />
        <Route path="/ops/audit" element={<OperatorOnly><AuditPage /></OperatorOnly>} />
        <Route path="/ops/merchants" element={<OperatorOnly><MerchantsPage /></OperatorOnly>} />
        <Route path="/ops/reconciliations" element={<OperatorOnly><ReconciliationsPage /></OperatorOnly>} />
        <Route path="*" element={<Navigate to={home} replace />} />
      </Routes>
    </Shell>
  );
}

function MerchantOnly({ children }: { children: JSX.Element }) {
  return isOperator(useCurrentSession()) ? <Forbidden /> : children;
}

function OperatorOnly({ children }: { children: JSX.Element }) {
  return isOperator(useCurrentSession()) ? children : <Forbidden />;
}

function Shell({ children }: { children: JSX.Element }) {
  const { t, lang, setLang } = useI18n();
  const session = useCurrentSession();
  const { logout } = useSession();
  const navigate = useNavigate();
  const location = useLocation();
  const operator = isOperator(session);
  const items = operator
    ? [
        { key: '/ops/review', icon: <ExceptionOutlined />, label: t('nav.review') },
        { key: '/ops/timeline', icon: <ClockCircleOutlined />, label: t('nav.timeline') },
        { key: '/ops/audit', icon: <AuditOutlined />, label: t('nav.audit') },
        { key: '/ops/merchants', icon: <ShopOutlined />, label: t('nav.merchants') },
        { key: '/ops/reconciliations', icon: <AccountBookOutlined />, label: t('recon.nav') },
      ]
    : [
        { key: '/orders', icon: <ShoppingCartOutlined />, label: t('nav.orders') },
        { key: '/webhooks', icon: <ApiOutlined />, label: t('nav.webhooks') },
        { key: '/reconciliation', icon: <ReconciliationOutlined />, label: t('nav.findings') },
        { key: '/credentials', icon: <KeyOutlined />, label: t('nav.credentials') },
      ];
  const selected = items.map((i) => i.key).filter((key) => location.pathname === key || location.pathname.startsWith(`${key}/`));
  return (
    <Layout style={{ minHeight: '100vh' }}>
      <Layout.Sider breakpoint="lg" collapsedWidth={0} theme="light" width={200} style={{ borderRight: '1px solid #f0f0f0' }}>
        <div style={{ padding: '16px 20px', fontWeight: 600, fontSize: 16 }}>durapay</div>
        <Menu mode="inline" selectedKeys={selected} items={items} onClick={({ key }) => navigate(key)} data-testid="nav" />
      </Layout.Sider>
      <Layout>
        <Layout.Header style={{ background: '#fff', borderBottom: '1px solid #f0f0f0', display: 'flex', justifyContent: 'space-between', alignItems: 'center', padding: '0 24px' }}>
          <Typography.Text strong>{t('app.title')}</Typography.Text>
          <Space size="middle">
            <Segmented<Lang>
              aria-label={t('app.language')}
              value={lang}
              onChange={(value) => setLang(value)}
              options={[
                { label: '中文', value: 'zh-CN' },
                { label: 'English', value: 'en' },
              ]}
            />
            <Typography.Text type="secondary" data-testid="whoami">
              {session.user.email} · {operator ? t('app.role.operator') : t('app.role.merchant', { id: session.user.merchantId ?? '' })}
            </Typography.Text>
            <Button icon={<LogoutOutlined />} onClick={() => void logout()}>
              {t('app.logout')}
            </Button>
          </Space>
        </Layout.Header>
        <Layout.Content style={{ padding: 24 }}>{children}</Layout.Content>
      </Layout>
    </Layout>
  );
}
