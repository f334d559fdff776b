// Merchant staff: the orders, newest first, a page at a time on the list API's keyset cursor;
// search by number (the order itself), or by status, creation dates, amount and method (the API's
// filters, which the cursor pages under).
import { Button, Card, DatePicker, Form, Input, Select, Space, Table, Typography } from 'antd';
import type { Dayjs } from 'dayjs';
import dayjs from 'dayjs';
import { useCallback, useEffect, useMemo, useState } from 'react';
import { Link, useSearchParams } from 'react-router-dom';
import { api, ApiError, PAYMENT_STATUSES, query, type Payment, type PaymentStatus } from '../api';
import { useI18n, type MessageKey } from '../i18n';
import { formatYuan, parseTypedYuan, parseYuan, toYuan } from '../money';
import { formatTime } from '../time';
import { StatusTag, useShowError } from '../ui';

const PAGE_SIZE = 20;
/** The range the API takes for an amount bound: "0.01" to "100000000.00". */
const MIN_FEN = 1;
const MAX_FEN = 100_000_000_00;
const typedFen = (text: string | undefined) => {
  const fen = text ? parseTypedYuan(text) : undefined;
  return fen !== undefined && fen >= MIN_FEN && fen <= MAX_FEN ? fen : undefined;
};

interface Filters {
  no?: string;
  status?: PaymentStatus;
  from?: string; // YYYY-MM-DD, local
  to?: string; // YYYY-MM-DD, local, inclusive
  min?: string;
  max?: string;
  method?: 'qr' | 'barcode';
}

function filtersFrom(params: URLSearchParams): Filters {
  const get = (key: string) => params.get(key) || undefined;
  const status = get('status');
  const method = get('method');
  return {
    no: get('no'),
    status: PAYMENT_STATUSES.includes(status as PaymentStatus) ? (status as PaymentStatus) : undefined,
    from: get('from'),
    to: get('to'),
    min: get('min'),
    max: get('max'),
    method: method === 'qr' || method === 'barcode' ? method : undefined,
  };
}

interface FormValues {
  no?: string;
  status?: PaymentStatus;
  dates?: [Dayjs | null, Dayjs | null] | null;
  min?: string;
  max?: string;
  method?: 'qr' | 'barcode';
}

export function OrdersPage() {
  const { t } = useI18n();
  const showError = useShowError();
  const [params, setParams] = useSearchParams();
  const filters = useMemo(() => filtersFrom(params), [params]);
  const [form] = Form.useForm<FormValues>();
  // Keyset paging: the cursor of each page shown so far (undefined: the first page), for the
  // filters they were issued for; other filters start again at the first page.
  const paramsKey = params.toString();
  const [paging, setPaging] = useState<{ key: string; cursors: (string | undefined)[] }>({ key: paramsKey, cursors: [undefined] });
  const cursors = paging.key === paramsKey ? paging.cursors : [undefined];
  const setCursors = (next: (current: (string | undefined)[]) => (string | undefined)[]) =>
    setPaging({ key: paramsKey, cursors: next(cursors) });
  const [rows, setRows] = useState<Payment[]>([]);
  const [nextCursor, setNextCursor] = useState<string | null>(null);
  const [loading, setLoading] = useState(false);

  useEffect(() => {
    form.setFieldsValue({
      no: filters.no,
      status: filters.status,
      dates: filters.from || filters.to ? [filters.from ? dayjs(filters.from) : null, filters.to ? dayjs(filters.to) : null] : undefined,
      min: filters.min,
      max: filters.max,
      method: filters.method,
    });
  }, [filters, form]);

  const load = useCallback(
    async (cursor: string | undefined) => {
      setLoading(true);
      try {
        const minFen = typedFen(filters.min);
        const maxFen = typedFen(filters.max);
        // An order read by its number is checked against the other filters here.
        const keep = (p: Payment) => {
          const fen = parseYuan(p.amount) ?? 0;
          return (
            (!filters.status || p.status === filters.status) &&
            (!filters.method || p.method === filters.method) &&
            (minFen === undefined || fen >= minFen) &&
            (maxFen === undefined || fen <= maxFen)
          );
        };
        if (filters.no) {
          // An order number names one order: read it.
          try {
            const one = await api.get<Payment>(`/v1/payments/${encodeURIComponent(filters.no)}`);
            setRows(keep(one) ? [one] : []);
          } catch (err) {
            if (err instanceof ApiError && (err.status === 404 || err.status === 400)) setRows([]);
            else throw err;
          }
          setNextCursor(null);
          return;
        }
        const answer = await api.get<{ payments: Payment[]; nextCursor: string | null }>(
          `/v1/payments${query({
            status: filters.status,
            createdFrom: filters.from ? dayjs(filters.from).startOf('day').format() : undefined,
            createdTo: filters.to ? dayjs(filters.to).add(1, 'day').startOf('day').format() : undefined,
            amountMin: minFen === undefined ? undefined : toYuan(minFen),
            amountMax: maxFen === undefined ? undefined : toYuan(maxFen),
            method: filters.method,
            limit: PAGE_SIZE,
            cursor,
          })}`,
        );
        setRows(answer.payments);
        setNextCursor(answer.nextCursor);
      } catch (err) {
        showError(err);
      } finally {
        setLoading(false);
      }
    },
    [filters, showError],
  );

  const cursor = cursors[cursors.length - 1];
  useEffect(() => {
    void load(cursor);
  }, [load, cursor]);

  function search(values: FormValues) {
    const next: Record<string, string> = {};
    if (values.no?.trim()) next.no = values.no.trim();
    if (values.status) next.status = values.status;
    if (values.dates?.[0]) next.from = values.dates[0].format('YYYY-MM-DD');
    if (values.dates?.[1]) next.to = values.dates[1].format('YYYY-MM-DD');
    if (values.min?.trim()) next.min = values.min.trim();
    if (values.max?.trim()) next.max = values.max.trim();
    if (values.method) next.method = values.method;
    setParams(next);
  }

  const amountRule = { validator: (_: unknown, value?: string) => (!value?.trim() || typedFen(value) !== undefined ? Promise.resolve() : Promise.reject(new Error(t('orders.invalidAmount')))) };
  const maxRule = ({ getFieldValue }: { getFieldValue: (name: string) => unknown }) => ({
    validator: (_: unknown, value?: string) => {
      const min = typedFen(getFieldValue('min') as string | undefined);
      const max = typedFen(value);
      return min === undefined || max === undefined || max >= min ? Promise.resolve() : Promise.reject(new Error(t('orders.maxBelowMin')));
    },
  });

  return (
    <Space direction="vertical" size="middle" style={{ width: '100%' }}>
      <Typography.Title level={3} style={{ margin: 0 }}>
        {t('orders.title')}
      </Typography.Title>
      <Card size="small">
        <Form form={form} layout="inline" onFinish={search} style={{ rowGap: 12 }}>
          <Form.Item name="no" label={t('orders.outTradeNo')}>
            <Input allowClear style={{ width: 220 }} data-testid="search-no" />
          </Form.Item>
          <Form.Item name="status" label={t('orders.status')}>
            <Select
              allowClear
              placeholder={t('orders.any')}
              style={{ width: 150 }}
              options={PAYMENT_STATUSES.map((s) => ({ value: s, label: t(`status.${s}` as MessageKey) }))}
            />
          </Form.Item>
          <Form.Item name="dates" label={t('orders.dateRange')}>
            <DatePicker.RangePicker allowEmpty={[true, true]} />
          </Form.Item>
          <Form.Item name="min" label={t('orders.amountMin')} rules={[amountRule]}>
            <Input allowClear prefix="¥" style={{ width: 120 }} data-testid="search-min" />
          </Form.Item>
          <Form.Item name="max" label={t('orders.amountMax')} rules={[amountRule, maxRule]} dependencies={['min']}>
            <Input allowClear prefix="¥" style={{ width: 120 }} data-testid="search-max" />
          </Form.Item>
          <Form.Item name="method" label={t('orders.method')}>
            <Select
              allowClear
              placeholder={t('orders.any')}
              style={{ width: 130 }}
              options={[
                { value: 'qr', label: t('method.qr') },
                { value: 'barcode', label: t('method.barcode') },
              ]}
            />
          </Form.Item>
          <Form.Item>
            <Space>
              <Button type="primary" htmlType="submit">
                {t('common.search')}
              </Button>
              <Button onClick={() => setParams({})}>{t('common.reset')}</Button>
            </Space>
          </Form.Item>
        </Form>
      </Card>
      <div data-testid="orders-table">
        <Table<Payment>
          rowKey="outTradeNo"
          loading={loading}
          dataSource={rows}
          pagination={false}
          locale={{ emptyText: t('orders.empty') }}
          columns={[
            {
              title: t('orders.outTradeNo'),
              dataIndex: 'outTradeNo',
              render: (no: string) => <Link to={`/orders/${encodeURIComponent(no)}`}>{no}</Link>,
            },
            { title: t('orders.amount'), dataIndex: 'amount', align: 'right', render: (a: string) => formatYuan(a) },
            { title: t('orders.status'), dataIndex: 'status', render: (s: PaymentStatus) => <StatusTag status={s} /> },
            { title: t('orders.method'), dataIndex: 'method', render: (m: 'qr' | 'barcode') => t(`method.${m}`) },
            { title: t('orders.subject'), dataIndex: 'subject', ellipsis: true },
            { title: t('orders.alipayTradeNo'), dataIndex: 'alipayTradeNo', render: (v: string | null) => v ?? '—' },
            { title: t('orders.createdAt'), dataIndex: 'createdAt', render: formatTime },
            { title: t('orders.paidAt'), dataIndex: 'paidAt', render: formatTime },
          ]}
        />
      </div>
      <Space>
        <Button disabled={cursors.length <= 1} onClick={() => setCursors(() => [undefined])}>
          {t('common.firstPage')}
        </Button>
        <Button disabled={cursors.length <= 1} onClick={() => setCursors((c) => c.slice(0, -1))}>
          {t('common.prevPage')}
        </Button>
        <Button disabled={!nextCursor} onClick={() => nextCursor && setCursors((c) => [...c, nextCursor])}>
          {t('common.nextPage')}
        </Button>
      </Space>
    </Space>
  );
}
