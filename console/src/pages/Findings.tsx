// Merchant staff: what the daily reconciliations with Alipay's bill found about their orders, for
// a range of bill days, and a CSV export of the orders (and their refunds) created in a range.
import { Alert, Button, Card, DatePicker, Space, Table, Typography } from 'antd';
import { DownloadOutlined } from '@ant-design/icons';
import type { Dayjs } from 'dayjs';
import dayjs from 'dayjs';
import { useCallback, useEffect, useMemo, useState } from 'react';
import { Link, useSearchParams } from 'react-router-dom';
import { api, API_BASE, query } from '../api';
import { useI18n, type MessageKey } from '../i18n';
import { formatYuan } from '../money';
import { useShowError } from '../ui';

/** The longest range the console API takes, in days (both ends included). */
export const MAX_RANGE_DAYS = 92;
const DAY = /^\d{4}-\d{2}-\d{2}$/;

export interface Finding {
  billDate: string;
  outTradeNo: string;
  kind: 'missing_local' | 'missing_gateway' | 'amount_mismatch' | 'status_mismatch' | 'refund_mismatch';
  outRequestNo: string | null;
  alipayTradeNo: string | null;
  localAmount: string | null;
  gatewayAmount: string | null;
  detail: string;
}

function rangeFrom(params: URLSearchParams): { from: string; to: string } {
  const from = params.get('from');
  const to = params.get('to');
  if (from && to && DAY.test(from) && DAY.test(to)) return { from, to };
  // The last 30 days, today included.
  return { from: dayjs().subtract(29, 'day').format('YYYY-MM-DD'), to: dayjs().format('YYYY-MM-DD') };
}

const daysIn = (from: string, to: string) => dayjs(to).diff(dayjs(from), 'day') + 1;

export function FindingsPage() {
  const { t } = useI18n();
  const showError = useShowError();
  const [params, setParams] = useSearchParams();
  const range = useMemo(() => rangeFrom(params), [params]);
  const [findings, setFindings] = useState<Finding[] | undefined>();
  const [truncated, setTruncated] = useState(false);
  const [loading, setLoading] = useState(false);
  const tooLong = daysIn(range.from, range.to) > MAX_RANGE_DAYS || range.to < range.from;

  const load = useCallback(async () => {
    if (tooLong) return;
    setLoading(true);
    try {
      const answer = await api.get<{ findings: Finding[]; truncated: boolean }>(`/v1/reconciliation-findings${query(range)}`);
      setFindings(answer.findings);
      setTruncated(answer.truncated);
    } catch (err) {
      showError(err);
    } finally {
      setLoading(false);
    }
  }, [range, tooLong, showError]);

  useEffect(() => {
    void load();
  }, [load]);

  function choose(dates: [Dayjs | null, Dayjs | null] | null) {
    if (dates?.[0] && dates[1]) setParams({ from: dates[0].format('YYYY-MM-DD'), to: dates[1].format('YYYY-MM-DD') });
  }

  return (
    <Space direction="vertical" size="middle" style={{ width: '100%' }}>
      <Typography.Title level={3} style={{ margin: 0 }}>
        {t('findings.title')}
      </Typography.Title>
      <Card size="small">
        <Space wrap>
          <Typography.Text>{t('findings.range')}</Typography.Text>
          <DatePicker.RangePicker
            value={[dayjs(range.from), dayjs(range.to)]}
            onChange={(dates) => choose(dates as [Dayjs | null, Dayjs | null] | null)}
            allowClear={false}
          />
          <Button onClick={() => void load()}>{t('common.refresh')}</Button>
          <Button
            type="primary"
            icon={<DownloadOutlined />}
            disabled={tooLong}
            href={`${API_BASE}/v1/exports/orders.csv${query(range)}`}
            download={`durapay-orders-${range.from}-${range.to}.csv`}
            data-testid="findings-export"
          >
            {t('findings.export')}
          </Button>
        </Space>
        <div>
          <Typography.Text type="secondary">{t('findings.help', { days: MAX_RANGE_DAYS })}</Typography.Text>
        </div>
      </Card>
      {tooLong && <Alert type="warning" showIcon message={t('findings.tooLong', { days: MAX_RANGE_DAYS })} />}
      {truncated && <Alert type="info" showIcon message={t('findings.truncated', { count: findings?.length ?? 0 })} />}
      <div data-testid="findings-table">
        <Table<Finding>
          rowKey={(f) => `${f.billDate}|${f.outTradeNo}|${f.kind}|${f.outRequestNo ?? ''}|${f.detail}`}
          loading={loading}
          dataSource={tooLong ? [] : (findings ?? [])}
          pagination={{ pageSize: 50, hideOnSinglePage: true }}
          locale={{ emptyText: t('findings.empty') }}
          columns={[
            { title: t('findings.billDate'), dataIndex: 'billDate' },
            {
              title: t('orders.outTradeNo'),
              dataIndex: 'outTradeNo',
              render: (no: string) => <Link to={`/orders/${encodeURIComponent(no)}`}>{no}</Link>,
            },
            { title: t('findings.kind'), dataIndex: 'kind', render: (kind: Finding['kind']) => t(`findings.kind.${kind}` as MessageKey) },
            { title: t('findings.refundNo'), dataIndex: 'outRequestNo', render: (v: string | null) => v ?? '—' },
            { title: t('findings.localAmount'), dataIndex: 'localAmount', align: 'right', render: (a: string | null) => formatYuan(a) },
            { title: t('findings.gatewayAmount'), dataIndex: 'gatewayAmount', align: 'right', render: (a: string | null) => formatYuan(a) },
            { title: t('findings.detail'), dataIndex: 'detail', ellipsis: true },
          ]}
        />
      </div>
    </Space>
  );
}
