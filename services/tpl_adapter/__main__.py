"""Run the tpl-adapter service: `python -m services.tpl_adapter`."""

from libs.config import load_settings
from libs.lifecycle import run
from libs.telemetry import configure_telemetry
from services.tpl_adapter.app import serve
from services.tpl_adapter.config import TplAdapterSettings

if __name__ == "__main__":
    settings = load_settings(TplAdapterSettings)
    telemetry = configure_telemetry(settings.service_name, settings)
    try:
        run(serve(settings))
    finally:
        telemetry.shutdown()
