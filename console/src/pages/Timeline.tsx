// Operators: one order's story from GET /ops/payments/:paymentId/timeline: its ledger, webhook
// attempts, Alipay calls and reconciliation findings in time order, its workflows, and the link to
// the payment workflow's history in the Temporal UI.
import { Alert, Button, Card, Descriptions, Input, Result, Space, Table, Tag, Typography } from 'antd';
import { useCallback, useEffect, useState } from 'react';
import { useNavigate, useParams } from 'react-router-dom';
import { api, ApiError, type OpsTimeline, type TimelineEntry, type TimelineWorkflow } from '../api';
import { useI18n, type MessageKey } from '../i18n';
import { formatYuan } from '../money';
import { formatTime } from '../time';
import { StatusTag, useShowError } from '../ui';

const SOURCE_COLORS: Record<TimelineEntry['source'], string> = { ledger: 'blue', webhook: 'purple', alipay: 'cyan', reconciliation: 'orange' };

export function TimelinePage() {
  const { paymentId } = useParams();
  const { t } = useI18n();
  const navigate = useNavigate();
  const showError = useShowError();
  const [timeline, setTimeline] = useState<OpsTimeline | undefined>();
  const [notFound, setNotFound] = useState(false);

  const load = useCallback(async () => {
    if (!paymentId) return;
    try {
      setTimeline(await api.get<OpsTimeline>(`/ops/payments/${encodeURIComponent(paymentId)}/timeline`));
      setNotFound(false);
    } catch (err) {
      if (err instanceof ApiError && (err.status === 404 || err.status === 400)) setNotFound(true);
      else showError(err);
    }
  }, [paymentId, showError]);
  useEffect(() => {
    setTimeline(undefined);
    setNotFound(false);
    void load();
  }, [load]);

  return (
    <Space direction="vertical" size="middle" style={{ width: '100%' }}>
      <Typography.Title level={3} style={{ margin: 0 }}>
        {t('timeline.title')}
      </Typography.Title>
      <Input.Search
        placeholder="payment:<appId>:<out_trade_no>"
        enterButton={t('timeline.open')}
        defaultValue={paymentId}
        key={paymentId}
        addonBefore={t('timeline.paymentId')}
        onSearch={(value) => value.trim() && navigate(`/ops/timeline/${encodeURIComponent(value.trim())}`)}
        style={{ maxWidth: 720 }}
      />
      {notFound && <Result status="404" title="404" subTitle={t('common.notFound')} />}
      {paymentId && !notFound && !timeline && <Card loading />}
      {timeline && <TimelineView timeline={timeline} onRefresh={() => void load()} />}
    </Space>
  );
}

function TimelineView({ timeline, onRefresh }: { timeline: OpsTimeline; onRefresh: () => void }) {
  const { t } = useI18n();
  return (
    <>
      <Card
        size="small"
        extra={
          <Space>
            <Button onClick={onRefresh}>{t('common.refresh')}</Button>
            {timeline.temporalUiUrl && (
              <Button type="primary" href={timeline.temporalUiUrl} target="_blank" rel="noreferrer" data-testid="temporal-link">
                {t('timeline.temporal')}
              </Button>
            )}
          </Space>
        }
        title={timeline.outTradeNo}
      >
        <Descriptions column={{ xs: 1, md: 2 }} size="small" bordered>
          <Descriptions.Item label={t('timeline.paymentId')}>{timeline.paymentId}</Descriptions.Item>
          <Descriptions.Item label={t('review.merchant')}>{timeline.merchantId ?? '—'}</Descriptions.Item>
          <Descriptions.Item label={t('orders.status')}>
            <StatusTag status={timeline.status} />
          </Descriptions.Item>
          <Descriptions.Item label={t('orders.amount')}>{formatYuan(timeline.amount)}</Descriptions.Item>
          <Descriptions.Item label={t('timeline.trace')}>{timeline.traceId ?? '—'}</Descriptions.Item>
          <Descriptions.Item label={t('timeline.history')}>{timeline.historyAvailable ? t('common.yes') : t('common.no')}</Descriptions.Item>
        </Descriptions>
        {!timeline.historyAvailable && <Alert style={{ marginTop: 12 }} type="warning" showIcon message={t('timeline.historyGone')} />}
      </Card>
      <Card size="small" title={t('timeline.workflows')}>
        <Table<TimelineWorkflow>
          rowKey="workflowId"
          size="small"
          pagination={false}
          dataSource={timeline.workflows}
          columns={[
            { title: t('timeline.kind'), dataIndex: 'kind', render: (k: string) => <Tag>{k}</Tag> },
            { title: 'Workflow ID', dataIndex: 'workflowId', render: (id: string) => <Typography.Text code>{id}</Typography.Text> },
            { title: t('review.workflowStatus'), dataIndex: 'status', render: (s: string | null) => s ?? '—' },
            { title: t('timeline.history'), dataIndex: 'historyAvailable', render: (h: boolean) => (h ? t('common.yes') : t('common.no')) },
            {
              title: 'Temporal UI',
              dataIndex: 'temporalUiUrl',
              render: (url: string | null) =>
                url ? (
                  <a href={url} target="_blank" rel="noreferrer">
                    {t('timeline.open')}
                  </a>
                ) : (
                  '—'
                ),
            },
          ]}
        />
      </Card>
      <Card size="small" title={t('timeline.entries')}>
        <div data-testid="timeline-entries">
          <Table<TimelineEntry>
            rowKey={(e) => `${e.at}|${e.source}|${e.type}|${e.summary}`}
            size="small"
            pagination={false}
            dataSource={timeline.entries}
            columns={[
              { title: t('timeline.at'), dataIndex: 'at', width: 180, render: formatTime },
              {
                title: t('timeline.source'),
                dataIndex: 'source',
                width: 110,
                render: (s: TimelineEntry['source']) => <Tag color={SOURCE_COLORS[s]}>{t(`timeline.source.${s}` as MessageKey)}</Tag>,
              },
              { title: t('webhook.type'), dataIndex: 'type', width: 200, render: (v: string) => <Typography.Text code>{v}</Typography.Text> },
              { title: t('timeline.summary'), dataIndex: 'summary' },
            ]}
          />
        </div>
      </Card>
    </>
  );
}
