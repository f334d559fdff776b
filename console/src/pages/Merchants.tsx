// Operators: the merchants, with create, disable and enable (GET/POST /console/api/ops/merchants,
// POST .../:id/disable|enable).
import { Alert, App as AntApp, Button, Form, Input, Modal, Popconfirm, Result, Space, Table, Tag, Typography } from 'antd';
import { useCallback, useEffect, useState } from 'react';
import { api, ApiError, type MerchantSummary } from '../api';
import { useI18n } from '../i18n';
import { useShowError } from '../ui';

function isDisabled(m: MerchantSummary): boolean {
  if (typeof m.enabled === 'boolean') return !m.enabled;
  if (typeof m.disabled === 'boolean') return m.disabled;
  if (typeof m.status === 'string') return m.status.toLowerCase() === 'disabled';
  return Boolean(m.disabledAt);
}

/** Whatever the create answer holds besides the merchant's plain fields: its credentials, shown once. */
function credentialsOf(created: Record<string, unknown>): [string, string][] {
  return Object.entries(created).filter(([key, value]) => typeof value === 'string' && /secret|key|token|password/i.test(key)) as [string, string][];
}

export function MerchantsPage() {
  const { t } = useI18n();
  const { message } = AntApp.useApp();
  const showError = useShowError();
  const [merchants, setMerchants] = useState<MerchantSummary[] | undefined>();
  const [missing, setMissing] = useState(false);
  const [creating, setCreating] = useState(false);
  const [credentials, setCredentials] = useState<[string, string][] | undefined>();
  const [form] = Form.useForm<{ name: string }>();

  const load = useCallback(async () => {
    try {
      const answer = await api.get<{ data?: MerchantSummary[]; merchants?: MerchantSummary[] } | MerchantSummary[]>('/ops/merchants');
      setMerchants(Array.isArray(answer) ? answer : (answer.data ?? answer.merchants ?? []));
    } catch (err) {
      if (err instanceof ApiError && err.status === 404) setMissing(true);
      else showError(err);
    }
  }, [showError]);
  useEffect(() => void load(), [load]);

  async function create() {
    const { name } = await form.validateFields();
    try {
      const created = await api.post<Record<string, unknown>>('/ops/merchants', { name: name.trim() });
      void message.success(t('merchants.created'));
      setCreating(false);
      form.resetFields();
      const merchant = (created.merchant as Record<string, unknown> | undefined) ?? created;
      const shown = [...credentialsOf(created), ...(merchant === created ? [] : credentialsOf(merchant))];
      setCredentials(shown.length ? [['id', String(merchant.id ?? '')], ...shown] : undefined);
      await load();
    } catch (err) {
      showError(err);
    }
  }

  async function setEnabled(m: MerchantSummary, enabled: boolean) {
    try {
      await api.post(`/ops/merchants/${encodeURIComponent(m.id)}/${enabled ? 'enable' : 'disable'}`);
      await load();
    } catch (err) {
      showError(err);
    }
  }

  if (missing) return <Result status="info" title={t('merchants.title')} subTitle={t('merchants.unavailable')} />;
  return (
    <Space direction="vertical" size="middle" style={{ width: '100%' }}>
      <Space style={{ justifyContent: 'space-between', width: '100%' }}>
        <Typography.Title level={3} style={{ margin: 0 }}>
          {t('merchants.title')}
        </Typography.Title>
        <Button type="primary" onClick={() => setCreating(true)}>
          {t('merchants.create')}
        </Button>
      </Space>
      {credentials && (
        <Alert
          type="success"
          showIcon
          closable
          onClose={() => setCredentials(undefined)}
          message={t('merchants.credentials')}
          description={credentials.map(([key, value]) => (
            <div key={key}>
              {key}: <Typography.Text code copyable>{value}</Typography.Text>
            </div>
          ))}
        />
      )}
      <div data-testid="merchants-table">
        <Table<MerchantSummary>
          rowKey="id"
          loading={!merchants}
          dataSource={merchants ?? []}
          pagination={{ pageSize: 50, hideOnSinglePage: true }}
          columns={[
            { title: t('merchants.id'), dataIndex: 'id', render: (id: string) => <Typography.Text code>{id}</Typography.Text> },
            { title: t('merchants.name'), dataIndex: 'name', render: (v?: string) => v ?? '—' },
            {
              title: t('merchants.state'),
              key: 'state',
              render: (_: unknown, m) => (isDisabled(m) ? <Tag color="error">{t('merchants.disabled')}</Tag> : <Tag color="success">{t('merchants.active')}</Tag>),
            },
            {
              title: t('common.actions'),
              key: 'actions',
              render: (_: unknown, m) =>
                isDisabled(m) ? (
                  <Button size="small" onClick={() => void setEnabled(m, true)}>
                    {t('merchants.enable')}
                  </Button>
                ) : (
                  <Popconfirm title={t('merchants.disableConfirm')} onConfirm={() => void setEnabled(m, false)} okText={t('common.confirm')} cancelText={t('common.cancel')}>
                    <Button size="small" danger>
                      {t('merchants.disable')}
                    </Button>
                  </Popconfirm>
                ),
            },
          ]}
        />
      </div>
      <Modal open={creating} title={t('merchants.create')} onOk={() => void create()} onCancel={() => setCreating(false)} okText={t('common.confirm')} cancelText={t('common.cancel')}>
        <Form form={form} layout="vertical">
          <Form.Item name="name" label={t('merchants.name')} rules={[{ required: true, whitespace: true, max: 200 }]}>
            <Input />
          </Form.Item>
        </Form>
      </Modal>
    </Space>
  );
}
