// Merchant staff: the webhook endpoints (add one, enable or disable it, send a test event) and an
// endpoint's deliveries: each event's status, its attempts and the coarse reason of the last
// failure (HTTP 503, timeout, unreachable…), with a resend.
import { Alert, App as AntApp, Button, Card, Form, Input, Modal, Select, Space, Switch, Table, Tag, Typography } from 'antd';
import { useCallback, useEffect, useState } from 'react';
import { Link, useNavigate, useParams } from 'react-router-dom';
import { api, type WebhookDelivery, type WebhookEndpoint } from '../api';
import { useI18n } from '../i18n';
import { formatTime } from '../time';
import { DeliveryTag, useAttemptText, useShowError } from '../ui';

const EVENT_TYPES = [
  'payment.paid',
  'payment.closed',
  'payment.review',
  'payment.precreate_failed',
  'payment.failed',
  'payment.partially_refunded',
  'payment.refunded',
  'refund.succeeded',
  'refund.failed',
  'payment.late_payment',
  'payment.late_payment_refunded',
  'payment.late_payment_refund_failed',
];

export function WebhooksPage() {
  const { endpointId } = useParams();
  const { t } = useI18n();
  const { message } = AntApp.useApp();
  const showError = useShowError();
  const navigate = useNavigate();
  const [endpoints, setEndpoints] = useState<WebhookEndpoint[] | undefined>();
  const [creating, setCreating] = useState(false);
  const [secret, setSecret] = useState<string | undefined>();
  const [form] = Form.useForm<{ url: string; events: string[]; description?: string }>();

  const load = useCallback(async () => {
    try {
      setEndpoints((await api.get<{ endpoints: WebhookEndpoint[] }>('/v1/webhook-endpoints')).endpoints);
    } catch (err) {
      showError(err);
    }
  }, [showError]);
  useEffect(() => void load(), [load]);

  async function create() {
    const values = await form.validateFields();
    try {
      const created = await api.post<WebhookEndpoint>('/v1/webhook-endpoints', {
        url: values.url.trim(),
        events: values.events.includes('*') ? ['*'] : values.events,
        ...(values.description?.trim() ? { description: values.description.trim() } : {}),
      });
      setCreating(false);
      form.resetFields();
      setSecret(created.secret);
      await load();
    } catch (err) {
      showError(err);
    }
  }

  async function toggle(endpoint: WebhookEndpoint, enabled: boolean) {
    try {
      await api.patch(`/v1/webhook-endpoints/${endpoint.id}`, { enabled });
      await load();
    } catch (err) {
      showError(err);
    }
  }

  async function ping(endpoint: WebhookEndpoint) {
    try {
      await api.post(`/v1/webhook-endpoints/${endpoint.id}/test`);
      void message.success(t('webhook.testSent'));
    } catch (err) {
      showError(err);
    }
  }

  return (
    <Space direction="vertical" size="middle" style={{ width: '100%' }}>
      <Space style={{ justifyContent: 'space-between', width: '100%' }}>
        <Typography.Title level={3} style={{ margin: 0 }}>
          {t('webhook.endpoints')}
        </Typography.Title>
        <Button type="primary" onClick={() => setCreating(true)}>
          {t('webhook.create')}
        </Button>
      </Space>
      {secret && (
        <Alert
          type="success"
          showIcon
          closable
          onClose={() => setSecret(undefined)}
          message={t('webhook.created')}
          description={<Typography.Text code copyable>{secret}</Typography.Text>}
        />
      )}
      <Table<WebhookEndpoint>
        rowKey="id"
        loading={!endpoints}
        dataSource={endpoints ?? []}
        pagination={false}
        locale={{ emptyText: t('webhook.noEndpoints') }}
        rowClassName={(e) => (e.id === endpointId ? 'ant-table-row-selected' : '')}
        columns={[
          { title: 'ID', dataIndex: 'id', render: (id: string) => <Link to={`/webhooks/${id}`}>{id}</Link> },
          { title: t('webhook.url'), dataIndex: 'url', ellipsis: true },
          {
            title: t('webhook.events'),
            dataIndex: 'events',
            render: (events: string[]) => (events.includes('*') ? <Tag>{t('webhook.allEvents')}</Tag> : events.map((e) => <Tag key={e}>{e}</Tag>)),
          },
          { title: t('webhook.description'), dataIndex: 'description', render: (v: string | null) => v ?? '—' },
          {
            title: t('webhook.enabled'),
            dataIndex: 'enabled',
            render: (enabled: boolean, e) => <Switch checked={enabled} onChange={(on) => void toggle(e, on)} />,
          },
          { title: t('orders.createdAt'), dataIndex: 'createdAt', render: formatTime },
          {
            title: t('common.actions'),
            key: 'actions',
            render: (_: unknown, e) => (
              <Space>
                <Button size="small" onClick={() => navigate(`/webhooks/${e.id}`)}>
                  {t('webhook.deliveries')}
                </Button>
                <Button size="small" disabled={!e.enabled} onClick={() => void ping(e)}>
                  {t('webhook.test')}
                </Button>
              </Space>
            ),
          },
        ]}
      />
      {endpointId && <Deliveries endpointId={endpointId} />}
      <Modal open={creating} title={t('webhook.create')} onOk={() => void create()} onCancel={() => setCreating(false)} okText={t('common.confirm')} cancelText={t('common.cancel')}>
        <Form form={form} layout="vertical" initialValues={{ events: ['*'] }}>
          <Form.Item name="url" label={t('webhook.url')} rules={[{ required: true, type: 'url' }]}>
            <Input placeholder="https://shop.example.com/durapay/webhooks" />
          </Form.Item>
          <Form.Item name="events" label={t('webhook.events')} rules={[{ required: true, type: 'array', min: 1 }]}>
            <Select mode="multiple" options={[{ value: '*', label: t('webhook.allEvents') }, ...EVENT_TYPES.map((e) => ({ value: e, label: e }))]} />
          </Form.Item>
          <Form.Item name="description" label={t('webhook.description')} rules={[{ max: 200 }]}>
            <Input />
          </Form.Item>
        </Form>
      </Modal>
    </Space>
  );
}

function Deliveries({ endpointId }: { endpointId: string }) {
  const { t } = useI18n();
  const { message } = AntApp.useApp();
  const showError = useShowError();
  const attemptText = useAttemptText();
  const [deliveries, setDeliveries] = useState<WebhookDelivery[] | undefined>();

  const load = useCallback(async () => {
    try {
      setDeliveries((await api.get<{ deliveries: WebhookDelivery[] }>(`/v1/webhook-endpoints/${encodeURIComponent(endpointId)}/deliveries?limit=100`)).deliveries);
    } catch (err) {
      showError(err);
    }
  }, [endpointId, showError]);
  useEffect(() => {
    setDeliveries(undefined);
    void load();
  }, [load]);

  async function resend(eventId: string) {
    try {
      await api.post(`/v1/webhook-endpoints/${encodeURIComponent(endpointId)}/deliveries/${encodeURIComponent(eventId)}/resend`);
      void message.success(t('webhook.resent'));
      await load();
    } catch (err) {
      showError(err);
    }
  }

  return (
    <Card title={t('webhook.deliveriesOf', { id: endpointId })} size="small" extra={<Button onClick={() => void load()}>{t('common.refresh')}</Button>}>
      <div data-testid="endpoint-deliveries">
        <Table<WebhookDelivery>
          rowKey="eventId"
          size="small"
          loading={!deliveries}
          dataSource={deliveries ?? []}
          pagination={false}
          columns={[
            { title: t('webhook.event'), dataIndex: 'eventId', render: (id: string) => <Typography.Text code>{id}</Typography.Text> },
            { title: t('webhook.type'), dataIndex: 'type' },
            {
              title: t('orders.outTradeNo'),
              dataIndex: 'outTradeNo',
              render: (no: string | null) => (no ? <Link to={`/orders/${encodeURIComponent(no)}`}>{no}</Link> : '—'),
            },
            { title: t('webhook.status'), dataIndex: 'status', render: (s: string) => <DeliveryTag status={s} /> },
            { title: t('webhook.attempts'), dataIndex: 'attempts', align: 'right', render: (a: WebhookDelivery['attempts']) => a.length },
            { title: t('webhook.lastResult'), key: 'last', render: (_: unknown, d) => attemptText(d.attempts.at(-1)) },
            { title: t('orders.createdAt'), dataIndex: 'createdAt', render: formatTime },
            { title: t('webhook.deliveredAt'), dataIndex: 'deliveredAt', render: formatTime },
            {
              title: t('common.actions'),
              key: 'actions',
              render: (_: unknown, d) => (
                <Button size="small" onClick={() => void resend(d.eventId)}>
                  {t('webhook.resend')}
                </Button>
              ),
            },
          ]}
        />
      </div>
    </Card>
  );
}
