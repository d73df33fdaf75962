from jobs.cli import app

app()
