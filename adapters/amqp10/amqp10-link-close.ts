import type { Receiver, Sender } from 'rhea';

/**
 * Detaches a link and ends its session, whether or not the broker answered its attach yet. A link still
 * waiting for the broker's attach is closed once the answer (attach or refusal) arrives: closed earlier,
 * rhea 3.0.5 sends the attach again after the session ended and drops the whole connection on the
 * broker's reply ("attach received on invalid channel", measured with RabbitMQ 3.10). `answered`: the
 * broker already answered the attach (a refusal is being handled): closed at once.
 */
export function closeLink(link: Receiver | Sender, answered = false): void {
  const end = (): void => {
    if (!link.is_closed()) link.close();
    if (!link.session.is_closed()) link.session.close();
  };
  if (answered || link.is_remote_open() || link.is_closed()) {
    end();
    return;
  }
  const [opened, failed] = link.is_receiver() ? (['receiver_open', 'receiver_error'] as const) : (['sender_open', 'sender_error'] as const);
  let done = false;
  const once = (): void => {
    if (done) return;
    done = true;
    end();
  };
  link.once(opened, once);
  link.once(failed, once);
  link.session.once('session_error', once);
}
