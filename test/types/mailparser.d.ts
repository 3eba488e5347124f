// Minimal typings for mailparser 3.x's simpleParser (no @types/mailparser in this project).
// Field names follow mailparser/lib/simple-parser.js and mail-parser.js.
declare module 'mailparser' {
  import type { Readable } from 'node:stream';

  export interface EmailAddress {
    address?: string;
    name: string;
    group?: EmailAddress[];
  }

  export interface AddressObject {
    value: EmailAddress[];
    html: string;
    text: string;
  }

  export type HeaderValue = string | string[] | AddressObject | Date | StructuredHeader;

  export interface StructuredHeader {
    value: string;
    params: Record<string, string>;
  }

  export type Headers = Map<string, HeaderValue>;

  export interface HeaderLine {
    key: string;
    line: string;
  }

  export interface Attachment {
    type: 'attachment';
    content: Buffer;
    contentType: string;
    contentDisposition: string;
    filename?: string;
    headers: Headers;
    checksum: string;
    size: number;
    contentId?: string;
    cid?: string;
    related: boolean;
  }

  export interface ParsedMail {
    attachments: Attachment[];
    headers: Headers;
    headerLines: HeaderLine[];
    html: string | false;
    text?: string;
    textAsHtml?: string;
    subject?: string;
    references?: string[] | string;
    date?: Date;
    to?: AddressObject | AddressObject[];
    from?: AddressObject;
    cc?: AddressObject | AddressObject[];
    bcc?: AddressObject | AddressObject[];
    replyTo?: AddressObject;
    messageId?: string;
    inReplyTo?: string;
    priority?: 'normal' | 'low' | 'high';
  }

  export interface SimpleParserOptions {
    keepCidLinks?: boolean;
    skipHtmlToText?: boolean;
    skipImageLinks?: boolean;
    skipTextToHtml?: boolean;
    skipTextLinks?: boolean;
    maxHtmlLengthToParse?: number;
  }

  export function simpleParser(source: Buffer | string | Readable, options?: SimpleParserOptions): Promise<ParsedMail>;
}
