from ovsphere.cli.main import app

app(prog_name="ovsphere")
