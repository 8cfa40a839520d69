"""Run the orders service: `python -m services.orders`."""

from libs.config import load_settings
from libs.lifecycle import run
from libs.telemetry import configure_telemetry
from services.orders.app import serve
from services.orders.config import OrdersSettings

if __name__ == "__main__":
    settings = load_settings(OrdersSettings)
    telemetry = configure_telemetry(settings.service_name, settings)
    try:
        run(serve(settings))
    finally:
        telemetry.shutdown()
