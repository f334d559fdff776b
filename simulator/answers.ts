/** A list value in an answer, such as refund_detail_item_list: objects of strings. */
export type AlipayList = readonly Readonly<Record<string, string>>[];

/** The fields of one `<method>_response` object, in the order Alipay writes them. */
export type AlipayPayload = Record<string, string | AlipayList>;

export function success(fields: AlipayPayload = {}): AlipayPayload {
  return { code: '10000', msg: 'Success', ...fields };
}

export function businessFailed(subCode: string, subMsg: string, fields: AlipayPayload = {}): AlipayPayload {
  return { code: '40004', msg: 'Business Failed', sub_code: subCode, sub_msg: subMsg, ...fields };
}

export function invalidArguments(subCode: string, subMsg: string): AlipayPayload {
  return { code: '40002', msg: 'Invalid Arguments', sub_code: subCode, sub_msg: subMsg };
}

export function serviceUnavailable(): AlipayPayload {
  return { code: '20000', msg: 'Service Currently Unavailable', sub_code: 'isp.unknow-error', sub_msg: '系统繁忙' };
}

export function invalidParameter(detail: string): AlipayPayload {
  return businessFailed('ACQ.INVALID_PARAMETER', `参数无效: ${detail}`);
}

/** A string field of an answer (code, sub_code), or null. */
export function textField(payload: AlipayPayload | null, key: string): string | null {
  const value = payload?.[key];
  return typeof value === 'string' ? value : null;
}
