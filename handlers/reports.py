"""Reports for managers (docs/api.md, "Reports").

`GET /admin/report/data?from=YYYY-MM-DD&to=YYYY-MM-DD[&service_id=][&business_id=]` →
`{code: 0, data: {from, to, business_id, service_id, days, agents, totals}}`;
`GET /admin/report/csv?...` → the same as a CSV attachment (UTF-8 with a BOM). A service
agent sees its own numbers, a manager its business's, a super_manager any business's. Rules
in realtime/chat/reports.py.
"""
from __future__ import annotations

from typing import Any

from realtime.chat.reports import report_csv

from .base import AgentApiHandler


class ReportHandler(AgentApiHandler):
    """Any logged-in agent; what it may see is decided by `Reports.scope` from its level."""

    async def data(self) -> dict[str, Any]:
        return await self.reports.report(
            self.agent, self.arg("from", max_len=20), self.arg("to", max_len=20),
            self.arg("business_id", max_len=100).strip(),
            self.int_arg("service_id", 0, lo=0, hi=2**31 - 1))


class ReportDataHandler(ReportHandler):
    async def get(self) -> None:
        self.set_header("Cache-Control", "no-store")
        self.answer(0, "", await self.data())


class ReportCsvHandler(ReportHandler):
    async def get(self) -> None:
        data = await self.data()
        name = f"wolive-report-{data['business_id']}-{data['from']}-{data['to']}"
        if data["service_id"]:
            name += f"-agent{data['service_id']}"
        ascii_name = "".join(ch if ch.isascii() and (ch.isalnum() or ch in "-_.") else "_"
                             for ch in name)
        self.set_header("Content-Type", "text/csv; charset=UTF-8")
        self.set_header("Content-Disposition", f'attachment; filename="{ascii_name}.csv"')
        self.set_header("Cache-Control", "no-store")
        self.finish(report_csv(data).encode("utf-8"))


def routes() -> list[tuple[str, type]]:
    return [(r"/admin/report/data", ReportDataHandler),
            (r"/admin/report/csv", ReportCsvHandler)]
