from __future__ import annotations

from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError

from streams.models import CorrelationReport
from streams.report.services import report_create


class Command(BaseCommand):
    help = "Build the correlation report now, in this process, and print its ranking."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--load-factory-data", metavar="DIR", nargs="?", const="", default=None,
                            help="First load the factory metrics.json/workorder.json from DIR "
                                 "(default: settings.FACTORY_DATA_DIR) into the telemetry tables.")
        parser.add_argument("--time-from", type=int, default=None, help="Only inputs at or after this epoch second.")
        parser.add_argument("--time-to", type=int, default=None, help="Only inputs at or before this epoch second.")
        parser.add_argument("--tolerance", type=int, default=None,
                            help="As-of join tolerance in seconds (default REPORT_ASOF_TOLERANCE_SECONDS).")
        parser.add_argument("--direction", choices=["backward", "nearest"], default=None,
                            help="As-of join direction (default REPORT_ASOF_DIRECTION).")
        parser.add_argument("--min-samples", type=int, default=None,
                            help="Fewest aligned pairs for a correlation (default REPORT_MIN_SAMPLES).")
        parser.add_argument("--rank-by", choices=["interval", "raw"], default=None,
                            help="Series that ranks the parameters (default REPORT_RANK_BY).")
        parser.add_argument("--like", type=int, default=None, metavar="REPORT_ID",
                            help="Rerun an earlier report with its window and parameters.")
        parser.add_argument("--top", type=int, default=5, help="Rows per product to print (default 5).")

    def handle(self, *args, **opts) -> None:
        if opts["load_factory_data"] is not None:
            call_command("load_factory_data", *([opts["load_factory_data"]] if opts["load_factory_data"] else []),
                         stdout=self.stdout)
        parameters = {"tolerance_seconds": opts["tolerance"], "direction": opts["direction"],
                      "min_samples": opts["min_samples"], "rank_by": opts["rank_by"]}
        time_from, time_to = opts["time_from"], opts["time_to"]
        if opts["like"] is not None:
            try:
                earlier = CorrelationReport.objects.get(pk=opts["like"])
            except CorrelationReport.DoesNotExist:
                raise CommandError(f"no report #{opts['like']}") from None
            parameters = {**earlier.parameters, **{k: v for k, v in parameters.items() if v is not None}}
            time_from, time_to = earlier.time_from, earlier.time_to
        try:
            report = report_create(trigger=CorrelationReport.Trigger.SHELL, time_from=time_from,
                                   time_to=time_to, parameters=parameters)
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        if report.status != CorrelationReport.Status.DONE:
            raise CommandError(f"report #{report.pk} failed: {report.error}")
        for product in sorted(set(report.rows.values_list("product", flat=True))):
            self.stdout.write(f"product {product}:")
            for row in report.rows.filter(product=product).order_by("rank")[: opts["top"]]:
                r = "n/a" if row.correlation is None else f"{row.correlation:+.3f}"
                p = "n/a" if row.p_value is None else f"{row.p_value:.2g}"
                self.stdout.write(f"  #{row.rank:<3} parameter {row.parameter_id:<4} r={r}  n={row.samples}  p={p}")
        self.stdout.write(self.style.SUCCESS(
            f"report #{report.pk}: {report.metric_count} metrics, {report.workorder_count} work-order readings, "
            f"{report.duration_ms} ms, digest {report.input_digest[:12]}"
        ))
