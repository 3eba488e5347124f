import { describe, expect, it } from 'vitest';
import { stepsOfHistory } from '../../src/monitor/runs.js';

/** A run's steps from its Temporal history: activities' scheduled-to-closed times per step, and the failed step. */
const at = (s: number) => ({ seconds: 1_700_000_000 + Math.floor(s), nanos: Math.round((s % 1) * 1e9) });
const scheduled = (id: number, s: number, name: string) => ({ eventId: id, eventTime: at(s), activityTaskScheduledEventAttributes: { activityType: { name } } });

describe('stepsOfHistory', () => {
  it('sums each step\'s activities, names the lock and size check by their step, skips bookkeeping activities', () => {
    const events = [
      scheduled(5, 0, 'requestLock'), { eventId: 7, eventTime: at(0.25), activityTaskCompletedEventAttributes: { scheduledEventId: 5 } },
      scheduled(8, 1, 'notifiersOf'), { eventId: 9, eventTime: at(1.5), activityTaskCompletedEventAttributes: { scheduledEventId: 8 } },
      scheduled(10, 2, 'dump'), { eventId: 12, eventTime: at(12), activityTaskCompletedEventAttributes: { scheduledEventId: 10 } },
      scheduled(13, 12, 'checkSizes'), scheduled(14, 12, 'archive'),
      { eventId: 15, eventTime: at(12.5), activityTaskCompletedEventAttributes: { scheduledEventId: 13 } },
      { eventId: 16, eventTime: at(14), activityTaskCompletedEventAttributes: { scheduledEventId: 14 } },
      scheduled(17, 14, 'upload'), { eventId: 18, eventTime: at(20), activityTaskFailedEventAttributes: { scheduledEventId: 17 } },
      { eventId: 19, eventTime: at(21), workflowExecutionFailedEventAttributes: { failure: { message: 'backup app failed in the upload step after 3 attempts: connection reset' } } },
    ];
    expect(stepsOfHistory(events)).toEqual({
      steps: { lock: 250, dump: 10_000, archive: 2_500, upload: 6_000 },
      failedStep: 'upload', error: 'backup app failed in the upload step after 3 attempts: connection reset',
    });
  });

  it('a completed run has no failed step', () => {
    expect(stepsOfHistory([scheduled(1, 0, 'verify'), { eventId: 2, eventTime: at(3), activityTaskTimedOutEventAttributes: { scheduledEventId: 1 } }])).toEqual({ steps: { verify: 3_000 } });
  });
});
