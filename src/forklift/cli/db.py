"""`forklift db upgrade|current|history`: the database's schema revision, and the migrations to it.

Any command that opens the database upgrades it as it starts (so does `forklift serve`); these
commands do it on demand and show where it stands. The database is the one every command uses
(`FORKLIFT_DATABASE_URL`, else `$FORKLIFT_HOME/forklift.db`) unless `--database-url` names another.
"""

from __future__ import annotations

import click

from forklift.cli.groups import Group

database_url_option = click.option(
    "--database-url", metavar="URL",
    help="The database: sqlite:///PATH or postgresql://USER:PASSWORD@HOST[:PORT]/DATABASE (default: "
         "FORKLIFT_DATABASE_URL, else $FORKLIFT_HOME/forklift.db). Other users can read a command line: "
         "give a password through FORKLIFT_DATABASE_URL instead.")


def _url(database_url: str | None) -> str:
    from forklift.config import Settings, forklift_home
    from forklift.dburl import engine_url

    if database_url:
        engine_url(database_url, setting="--database-url")  # refused here, naming the option
        return database_url
    return Settings(home=forklift_home()).database_url


@click.group(cls=Group)
def db() -> None:
    """The database's schema: upgrade it, show its revision and the migrations."""


@db.command("upgrade")
@database_url_option
def upgrade_command(database_url: str | None) -> None:
    """Migrate the database to the newest schema revision.

    A database made before schema migrations (forklift 0.1.0) is stamped at the first revision, when
    its tables are the ones 0.1.0 made, and upgraded from there. Nothing changes for a database a newer
    forklift upgraded: the command fails naming the revisions.
    """
    from forklift import migrations

    click.echo(migrations.upgrade(_url(database_url)))


@db.command("current")
@database_url_option
def current_command(database_url: str | None) -> None:
    """Print the database's schema revision; changes nothing."""
    from forklift import __version__, migrations

    state = migrations.status(_url(database_url))
    head = migrations.head()
    if not state.exists:
        click.echo(f"none: no database at {state.database} yet (the first command that stores something makes it)")
    elif state.legacy:
        click.echo(f"none: {state.database} was made before schema migrations; `forklift db upgrade` stamps it "
                   f"at {migrations.INITIAL}")
    elif state.revision is None:
        click.echo(f"none: {state.database} holds no forklift schema yet")
    elif state.revision == head:
        click.echo(f"{state.revision} (head)")
    elif state.known:
        click.echo(f"{state.revision} (head is {head}: `forklift db upgrade`)")
    else:
        click.echo(f"{state.revision} (unknown to forklift {__version__}, whose newest revision is {head}: "
                   "a newer forklift upgraded this database)")


@db.command("history")
@database_url_option
def history_command(database_url: str | None) -> None:
    """List the schema migrations, oldest first (marked: the newest, and the database's)."""
    from forklift import migrations

    state = migrations.status(_url(database_url))
    for revision, doc in migrations.history():
        marks = [mark for mark, on in (("head", revision == migrations.head()),
                                       ("current", revision == state.revision)) if on]
        summary = doc.splitlines()[0] if doc else ""
        click.echo(f"{revision}  {summary}" + (f"  ({', '.join(marks)})" if marks else ""))
