"""Move messages from a poison queue back to their queue, once their cause is fixed (`--dry-run`, `--list`).

    python -m scripts.replay_poison --account-name <storage account> --list
    python -m scripts.replay_poison --account-name <storage account> --queue sspr-notifications [--max 100] [--dry-run]

The Functions host moves a message that failed 5 times to `<queue>-poison`, as it was (base64 text). This
copies each one back unchanged, then deletes it from the poison queue; a crash between the two leaves a copy in
both, which is safe because every queue handler is idempotent (security.md F1). Message contents are never
printed (they hold ids only, but they are not for logs either). Signs in with your Entra identity
(`az login`; you need Storage Queue Data Contributor on the account), or `--connection-string` for Azurite.
"""

from __future__ import annotations

import argparse
import sys

from azure.storage.queue import QueueClient, QueueMessage, QueueServiceClient

from shared.endpoints import expand_development_storage

POISON_SUFFIX = "-poison"
BATCH = 32  # the most one receive returns
LEASE_SECONDS = 300  # a message being moved stays invisible this long if the script dies mid-way


def parse_arguments(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m scripts.replay_poison", description=__doc__.splitlines()[0])
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--account-name", help="the storage account (signs in with your Entra identity)")
    where.add_argument("--connection-string", help="a connection string instead (Azurite: UseDevelopmentStorage=true)")
    what = parser.add_mutually_exclusive_group(required=True)
    what.add_argument("--queue", help="the queue to refill, e.g. sspr-notifications (its poison queue is emptied)")
    what.add_argument("--list", action="store_true", help="show every poison queue and its approximate length")
    parser.add_argument("--max", type=int, default=1000, help="move at most this many messages (default 1000)")
    parser.add_argument("--dry-run", action="store_true", help="show what would move, move nothing")
    return parser.parse_args(argv)


def service_client(args: argparse.Namespace) -> QueueServiceClient:
    if args.connection_string:
        return QueueServiceClient.from_connection_string(expand_development_storage(args.connection_string))
    from azure.identity import DefaultAzureCredential

    return QueueServiceClient(f"https://{args.account_name}.queue.core.windows.net", credential=DefaultAzureCredential())


def describe(message: QueueMessage) -> str:
    first = message.inserted_on.strftime("%Y-%m-%d %H:%M:%SZ") if message.inserted_on else "?"
    return f"{message.id} (poisoned {first})"


def list_poison_queues(service: QueueServiceClient) -> None:
    found = False
    for queue in service.list_queues():
        if queue.name.endswith(POISON_SUFFIX):
            found = True
            count = service.get_queue_client(queue.name).get_queue_properties().approximate_message_count
            print(f"{queue.name}: about {count} message(s)")
    if not found:
        print("No poison queues.")


def replay(source: QueueClient, target: QueueClient, limit: int, dry_run: bool) -> int:
    if dry_run:
        waiting = list(source.peek_messages(max_messages=min(BATCH, limit)))
        for message in waiting:
            print(f"  would move  {describe(message)}")
        total = source.get_queue_properties().approximate_message_count or 0
        print(f"Dry run: about {total} message(s) in {source.queue_name}, none moved"
              + (f" (the first {len(waiting)} shown)" if total > len(waiting) else "") + ".")
        return 0
    moved = 0
    while moved < limit:
        batch = list(source.receive_messages(messages_per_page=min(BATCH, limit - moved),
                                             visibility_timeout=LEASE_SECONDS, max_messages=min(BATCH, limit - moved)))
        if not batch:
            break
        for message in batch:
            target.send_message(message.content)
            source.delete_message(message)
            moved += 1
            print(f"  moved       {describe(message)}")
    print(f"Done: {moved} message(s) moved from {source.queue_name} to {target.queue_name}." if moved
          else f"Nothing to move: {source.queue_name} is empty.")
    return moved


def main(argv: list[str] | None = None) -> int:
    args = parse_arguments(argv)
    service = service_client(args)
    if args.list:
        list_poison_queues(service)
        return 0
    if args.queue.endswith(POISON_SUFFIX):
        print(f"error: name the queue to refill ({args.queue.removesuffix(POISON_SUFFIX)}), not its poison queue",
              file=sys.stderr)
        return 2
    source = service.get_queue_client(args.queue + POISON_SUFFIX)
    target = service.get_queue_client(args.queue)
    replay(source, target, args.max, args.dry_run)
    return 0


if __name__ == "__main__":
    sys.exit(main())
