#!/usr/bin/python3
"""Example worker that drains the ecrm outbox.

It LISTENs on channel ecrm_outbox so it wakes as soon as a message is enqueued, claims a batch with
ecrm.outbox_claim() (FOR UPDATE SKIP LOCKED: run as many workers as you like, none gets a message another
holds), "sends" each message, and marks it done, or failed so that ecrm retries it with an exponential
backoff (30 s, 1 min, 2 min, ... up to max_attempts).  A worker that dies leaves its claims to expire
(--lease) and another worker takes them over.

Sending here means printing one line per message (or appending it to --log); replace send() with your mail,
SMS or webhook client.  Connection settings come from the usual PG* environment variables or --dsn.

    /usr/bin/python3 test/outbox_worker.py --worker w1                 # run until interrupted
    /usr/bin/python3 test/outbox_worker.py --worker w1 --drain        # stop when nothing is due
    /usr/bin/python3 test/outbox_worker.py --fail-rate 0.1            # pretend 10% of sends fail (demo)
"""
import argparse
import random
import select
import signal
import sys
import time

import psycopg2
import psycopg2.extensions


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--dsn', default='', help='libpq connection string (default: PG* environment variables)')
    p.add_argument('--worker', default='worker-%d' % random.randint(1000, 9999), help='name recorded in claimed_by')
    p.add_argument('--batch', type=int, default=100, help='messages per claim (1 to 10000)')
    p.add_argument('--topics', default=None, help='comma-separated topics to consume (default: all)')
    p.add_argument('--lease', default='5 minutes', help='how long a claim lasts before another worker may take it')
    p.add_argument('--drain', action='store_true', help='exit when no message is due')
    p.add_argument('--fail-rate', type=float, default=0.0, help='fraction of sends that fail (demo of retries)')
    p.add_argument('--log', default=None, help='append one line per sent message to this file instead of stdout')
    p.add_argument('--quiet', action='store_true', help='print only the summary')
    return p.parse_args()


class Worker:
    def __init__(self, args):
        self.args = args
        self.conn = psycopg2.connect(args.dsn)
        self.conn.set_isolation_level(psycopg2.extensions.ISOLATION_LEVEL_AUTOCOMMIT)
        self.cur = self.conn.cursor()
        self.cur.execute('LISTEN ecrm_outbox')
        self.topics = args.topics.split(',') if args.topics else None
        self.out = open(args.log, 'a') if args.log else sys.stdout
        self.sent = self.failed = 0
        self.stop = False

    def send(self, msg):
        """Deliver one message; raise to report a failure.  Replace with a real sender."""
        if self.args.fail_rate and random.random() < self.args.fail_rate:
            raise RuntimeError('simulated delivery failure')
        if not self.args.quiet or self.args.log:
            print('%s\t%s\t%s\t%s\t%s' % (msg['message_id'], msg['topic'], msg['recipient'] or '',
                                          msg['subject'] or '', (msg['body'] or '').replace('\n', ' ')[:200]),
                  file=self.out)

    def claim(self):
        self.cur.execute('SELECT message_id, topic, channel, recipient, subject, body, attempts '
                         'FROM ecrm.outbox_claim(%s, %s, %s, %s::interval)',
                         (self.args.worker, self.args.batch, self.topics, self.args.lease))
        cols = [d[0] for d in self.cur.description]
        return [dict(zip(cols, row)) for row in self.cur.fetchall()]

    def seconds_until_next(self):
        """How long until the next pending message is due (for retries with backoff), at most 30 s."""
        self.cur.execute("SELECT extract(epoch FROM min(available_at) - clock_timestamp()) FROM ecrm.outbox "
                         "WHERE status = 'pending' AND (%s::text[] IS NULL OR topic = ANY (%s::text[]))",
                         (self.topics, self.topics))
        s = self.cur.fetchone()[0]
        return 30.0 if s is None else min(max(float(s), 0.05), 30.0)

    def run(self):
        while not self.stop:
            batch = self.claim()
            if batch:
                done = []
                for msg in batch:
                    try:
                        self.send(msg)
                        done.append(msg['message_id'])
                    except Exception as e:  # report the failure; ecrm decides whether to retry
                        self.cur.execute('SELECT ecrm.outbox_failed(%s, %s, %s)', (msg['message_id'], self.args.worker, str(e)))
                        self.failed += 1
                if done:
                    self.cur.execute('SELECT ecrm.outbox_done(%s::bigint[], %s)', (done, self.args.worker))
                    self.sent += len(done)
                continue
            if self.args.drain:
                self.cur.execute("SELECT count(*) FROM ecrm.outbox WHERE status IN ('pending', 'processing') "
                                 "AND (%s::text[] IS NULL OR topic = ANY (%s::text[]))", (self.topics, self.topics))
                if self.cur.fetchone()[0] == 0:
                    break
            # sleep until a notification arrives or the next retry is due
            if select.select([self.conn], [], [], self.seconds_until_next()) != ([], [], []):
                self.conn.poll()
                self.conn.notifies.clear()
        print('%s: sent %d, failed %d' % (self.args.worker, self.sent, self.failed), file=sys.stderr)


def main():
    args = parse_args()
    w = Worker(args)
    signal.signal(signal.SIGTERM, lambda *_: setattr(w, 'stop', True))
    try:
        w.run()
    except KeyboardInterrupt:
        print('%s: interrupted; sent %d, failed %d' % (args.worker, w.sent, w.failed), file=sys.stderr)


if __name__ == '__main__':
    main()
