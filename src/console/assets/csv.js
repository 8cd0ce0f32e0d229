// A small RFC 4180 CSV reader for broadcast audiences, mirroring the server's
// `audience::parse_csv`: a header row naming the recipient column (`to`,
// `phone`, `nomor`, `wa_id`, `igsid` or `recipient`) and one column per
// template variable. Fields are separated by commas or by semicolons (what
// Excel saves on Indonesian-locale machines), told apart by the header row;
// a UTF-8 byte order mark is dropped. Errors are message keys with the file
// line. Validation of numbers and variables stays on the server.

const RECIPIENT_COLUMNS = ['to', 'phone', 'nomor', 'wa_id', 'igsid', 'recipient'];

/** `;` when the header row (outside quotes) has more semicolons than commas, else `,`. */
export function detectDelimiter(text) {
  let commas = 0;
  let semicolons = 0;
  let quoted = false;
  for (const c of text) {
    if (c === '"') quoted = !quoted;
    else if (!quoted && (c === '\n' || c === '\r')) break;
    else if (!quoted && c === ',') commas += 1;
    else if (!quoted && c === ';') semicolons += 1;
  }
  return semicolons > commas ? ';' : ',';
}

/**
 * Records with the file line each starts on (blank lines are skipped) and
 * the delimiter found.
 */
export function parseCsv(input) {
  const text = String(input).replace(/^\uFEFF/, '');
  const delimiter = detectDelimiter(text);
  const records = [];
  const errors = [];
  let line = 1;
  let i = 0;
  const n = text.length;
  while (i < n) {
    const start = line;
    const fields = [];
    let field = '';
    let quoted = false;
    let end = false;
    while (i < n && !end) {
      const c = text[i];
      if (quoted) {
        if (c === '"') {
          if (text[i + 1] === '"') {
            field += '"';
            i += 2;
          } else {
            quoted = false;
            i += 1;
          }
        } else {
          if (c === '\n') line += 1;
          field += c;
          i += 1;
        }
      } else if (c === '"' && field.trim() === '') {
        quoted = true;
        field = '';
        i += 1;
      } else if (c === delimiter) {
        fields.push(field);
        field = '';
        i += 1;
      } else if (c === '\n' || c === '\r') {
        i += c === '\r' && text[i + 1] === '\n' ? 2 : 1;
        line += 1;
        end = true;
      } else {
        field += c;
        i += 1;
      }
    }
    if (quoted) {
      errors.push({ line: start, message: 'bc.csvQuote' });
      break;
    }
    fields.push(field);
    if (fields.length === 1 && fields[0].trim() === '') continue;
    records.push({ line: start, fields: fields.map((f) => f.trim()) });
  }
  return { records, errors, delimiter };
}

/** Recipients (`{to, variables}`) with their file lines, or row errors. */
export function recipientsFromCsv({ records, errors }) {
  if (errors.length) return { recipients: [], lines: [], errors };
  if (!records.length) return { recipients: [], lines: [], errors: [] };
  const [header, ...rows] = records;
  const names = header.fields.map((f) => f.replace(/^\uFEFF/, '').toLowerCase());
  const col = names.findIndex((x) => RECIPIENT_COLUMNS.includes(x));
  if (col === -1) {
    return {
      recipients: [],
      lines: [],
      errors: [{ line: header.line, message: 'bc.csvNoRecipient' }],
    };
  }
  const recipients = [];
  const lines = [];
  const rowErrors = [];
  for (const r of rows) {
    if (r.fields.length !== names.length) {
      rowErrors.push({ line: r.line, message: 'bc.csvColumns' });
      continue;
    }
    const variables = {};
    r.fields.forEach((v, i) => {
      if (i !== col && v !== '') variables[names[i]] = v;
    });
    recipients.push({ to: r.fields[col], variables });
    lines.push(r.line);
  }
  return { recipients, lines, errors: rowErrors };
}
