// A whole batch in one round trip: a single simple-query message `COPY …; [COPY …;] <batch statement>`
// with the COPY data frames written right behind it. Postgres runs a multi-statement message as one
// implicit transaction and commits it before ReadyForQuery, so ReadyForQuery without an error means
// committed, and any error rolls everything back. CopyData that arrives after a failed COPY is
// dropped by the server (protocol: "any subsequent CopyData … will simply be dropped").
//
// Why not BEGIN; COPY (pg-copy-streams); statement; COMMIT: four round trips, each also waiting for the
// receiver's event loop, which under load is busy decoding requests (numbers in writer-session.ts).
import type pg from 'pg';

const COPY_DONE = Buffer.from([0x63, 0, 0, 0, 4]); // 'c', length 4

function copyDataHeader(length: number): Buffer {
  const h = Buffer.allocUnsafe(5);
  h[0] = 0x64; // 'd'
  h.writeUInt32BE(length + 4, 1);
  return h;
}

/** pg's Submittable protocol: pg calls submit() when the connection is free, then handle*() per message. */
export class CopyBatchQuery implements pg.Submittable {
  readonly result: Promise<string[]>;
  private lastRow: string[] = [];
  private settle!: { resolve: (row: string[]) => void; reject: (err: Error) => void };

  /** `copies[i]` is the COPY text for the i-th `COPY … FROM STDIN` statement of `text`, in one or more pieces. */
  constructor(private readonly text: string, private readonly copies: Buffer[][]) {
    this.result = new Promise((resolve, reject) => {
      this.settle = { resolve, reject };
    });
  }

  submit(connection: pg.Connection): void {
    const out = connection.stream;
    if (!out.writable) return; // the connection is going away: pg fails this query with it
    // One writev for the whole message instead of one write per piece.
    out.cork();
    connection.query(this.text);
    // One CopyData message per piece (a request's rows): no concatenated copy of the whole batch.
    for (const pieces of this.copies) {
      for (const data of pieces) {
        out.write(copyDataHeader(data.length));
        out.write(data);
      }
      out.write(COPY_DONE);
    }
    out.uncork();
  }

  handleDataRow(msg: { fields: string[] }): void {
    this.lastRow = msg.fields;
  }

  handleReadyForQuery(): void {
    this.settle.resolve(this.lastRow);
  }

  handleError(err: Error): void {
    this.settle.reject(err);
  }

  // The data is already on its way; the other messages carry nothing the writer needs.
  handleCopyInResponse(): void {}
  handleRowDescription(): void {}
  handleCommandComplete(): void {}
  handleEmptyQuery(): void {}
  handlePortalSuspended(): void {}
  handleCopyData(): void {}
  callback(): void {}
}
