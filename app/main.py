"""The Flet entry point: the only place that wires page, vault, store and sync together."""

from __future__ import annotations

import os

import flet as ft


def main(page: ft.Page) -> None:
    """Build the app on a page (a minimal shell until the screens land)."""
    page.title = "Liaison"
    page.theme_mode = ft.ThemeMode.SYSTEM
    page.add(
        ft.SafeArea(
            ft.Column(
                [
                    ft.Text("Liaison", size=32, weight=ft.FontWeight.BOLD),
                    ft.Text("Offline field app for care liaisons."),
                ]
            )
        )
    )


def run_web(host: str = "127.0.0.1", port: int = 8550) -> None:
    """Serve the app for a browser, fully offline (no CDN, CanvasKit renderer)."""
    ft.run(
        main,
        view=None,
        host=host,
        port=port,
        no_cdn=True,
        web_renderer=ft.WebRenderer.CANVAS_KIT,
        assets_dir=os.path.join(os.path.dirname(os.path.dirname(__file__)), "assets"),
    )


if __name__ == "__main__":
    run_web()
