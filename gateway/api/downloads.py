"""A batch job's table as downloads (streamed CSV, XLSX), for the API and the portal."""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import Mapping
from pathlib import Path

from aiohttp import web

from gateway.batch.jobs import BatchService, JobStatus
from gateway.batch.tables import stream_csv, xlsx


async def csv_response(
    request: web.Request, batches: BatchService, status: JobStatus, headers: Mapping[str, str] | None = None
) -> web.StreamResponse:
    """The job's table as a streamed CSV download."""
    response = web.StreamResponse(
        headers={
            "Content-Type": "text/csv; charset=utf-8",
            "Content-Disposition": f'attachment; filename="{status.job_id}.csv"',
            **(headers or {}),
        }
    )
    await response.prepare(request)
    async for piece in stream_csv(batches.rows(status.job_id)):
        await response.write(piece)
    await response.write_eof()
    return response


async def xlsx_response(batches: BatchService, status: JobStatus) -> web.Response:
    """The job's table as an XLSX download (written to a temporary file as it streams)."""
    with tempfile.TemporaryDirectory() as directory:
        path = f"{directory}/{status.job_id}.xlsx"
        await asyncio.to_thread(xlsx, batches.rows(status.job_id), path, status=status)
        data = await asyncio.to_thread(Path(path).read_bytes)
    return web.Response(
        body=data,
        content_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        headers={"Content-Disposition": f'attachment; filename="{status.job_id}.xlsx"'},
    )
