/**
 * The part of Node's Buffer the replay tokens use (base64url of a byte array), installed as a
 * global in the model's worker.
 */
function toBase64url(bytes: ArrayLike<number>): string {
  let s = '';
  for (let i = 0; i < bytes.length; i++) s += String.fromCharCode(bytes[i]);
  return btoa(s).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

function fromBase64url(text: string): Uint8Array {
  const b64 = text.replace(/-/g, '+').replace(/_/g, '/');
  const bin = atob(b64 + '='.repeat((4 - (b64.length % 4)) % 4));
  return Uint8Array.from(bin, (c) => c.charCodeAt(0));
}

class BytesWithText extends Uint8Array {
  override toString(encoding?: string): string {
    if (encoding === 'base64url') return toBase64url(this);
    return super.toString();
  }
}

export const BufferShim = {
  from(src: ArrayLike<number> | string, encoding?: string): BytesWithText {
    if (typeof src === 'string') {
      if (encoding !== 'base64url') throw new Error(`Buffer shim: encoding ${String(encoding)}`);
      return new BytesWithText(fromBase64url(src));
    }
    return new BytesWithText(Array.from(src));
  },
};

export function installBuffer(): void {
  const g = globalThis as { Buffer?: unknown };
  g.Buffer ??= BufferShim;
}
