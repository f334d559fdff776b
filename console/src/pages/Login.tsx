import { Alert, Button, Card, Form, Input, Segmented, Space, Typography } from 'antd';
import { useState } from 'react';
import { ApiError } from '../api';
import { useI18n, type Lang } from '../i18n';
import { useSession, type SignedOutReason } from '../session';

export function LoginPage({ reason }: { reason?: SignedOutReason }) {
  const { t, lang, setLang } = useI18n();
  const { login } = useSession();
  const [error, setError] = useState<string | undefined>();
  const [busy, setBusy] = useState(false);

  async function submit(values: { email: string; password: string }) {
    setBusy(true);
    setError(undefined);
    try {
      await login(values.email, values.password);
    } catch (err) {
      if (err instanceof ApiError && err.code === 'LOGIN_FAILED') setError(t('login.failed'));
      else if (err instanceof ApiError && err.code === 'TOO_MANY_LOGIN_ATTEMPTS') setError(t('login.tooMany'));
      else setError(t('common.error', { message: err instanceof Error ? err.message : String(err) }));
    } finally {
      setBusy(false);
    }
  }

  const notice = reason === 'expired' ? t('login.expired') : reason === 'loggedOut' ? t('login.loggedOut') : undefined;
  return (
    <div style={{ minHeight: '100vh', display: 'flex', alignItems: 'center', justifyContent: 'center', background: '#f5f5f5' }}>
      <Card style={{ width: 400 }}>
        <Space direction="vertical" size="large" style={{ width: '100%' }}>
          <div style={{ display: 'flex', justifyContent: 'space-between', alignItems: 'center' }}>
            <Typography.Title level={4} style={{ margin: 0 }}>
              {t('login.title')}
            </Typography.Title>
          </div>
          <Segmented<Lang>
            aria-label={t('app.language')}
            value={lang}
            onChange={(value) => setLang(value)}
            options={[
              { label: '中文', value: 'zh-CN' },
              { label: 'English', value: 'en' },
            ]}
          />
          {notice && <Alert type={reason === 'expired' ? 'warning' : 'info'} showIcon message={notice} data-testid="login-notice" />}
          {error && <Alert type="error" showIcon message={error} data-testid="login-error" />}
          <Form layout="vertical" onFinish={submit} requiredMark={false}>
            <Form.Item name="email" label={t('login.email')} rules={[{ required: true }]}>
              <Input autoComplete="username" autoFocus />
            </Form.Item>
            <Form.Item name="password" label={t('login.password')} rules={[{ required: true }]}>
              <Input.Password autoComplete="current-password" />
            </Form.Item>
            <Button type="primary" htmlType="submit" block loading={busy}>
              {t('login.submit')}
            </Button>
          </Form>
        </Space>
      </Card>
    </div>
  );
}
