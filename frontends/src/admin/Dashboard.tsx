// Reporting's dashboard inside the app (same sign-in, the token never in a URL): a campaign's indicators for the
// caller's unit (`/whoami`) and each unit below it, drilling down by choosing a unit and back up by the trail.
import { useEffect, useState } from "preact/hooks";
import { allPages, ok, type ReportingClient, type ReportingComponents } from "../api/client";
import { t } from "../i18n";
import { Status } from "../outreach/common";
import { errorText, Table } from "./common";

type Summary = ReportingComponents["schemas"]["Summary"];
type Children = ReportingComponents["schemas"]["Children"];
type Campaign = ReportingComponents["schemas"]["CampaignOut"];

function percent(share: number | null | undefined): string {
  return share === null || share === undefined ? "—" : `${Math.round(share * 1000) / 10}%`;
}

export function Dashboard({ client }: { client: ReportingClient }) {
  const [campaigns, setCampaigns] = useState<Campaign[] | null>(null);
  const [campaignId, setCampaignId] = useState("");
  const [trail, setTrail] = useState<{ path: string; name: string }[]>([]);
  const [data, setData] = useState<Children | null>(null);
  const [error, setError] = useState("");

  useEffect(() => {
    void (async () => {
      try {
        const me = ok(await client.GET("/api/v1/whoami"));
        setTrail([{ path: me.org_path, name: me.org_path }]);
        const all = await allPages((cursor) =>
          client.GET("/api/v1/reporting/campaigns", { params: { query: cursor ? { limit: 100, cursor } : { limit: 100 } } }),
        );
        setCampaigns(all);
        setCampaignId(all[0]?.campaign_id ?? "");
      } catch (e) {
        setError(errorText(e));
      }
    })();
  }, [client]);

  const here = trail[trail.length - 1];
  useEffect(() => {
    if (!here || !campaignId) return;
    setData(null);
    setError("");
    void client
      .GET("/api/v1/children", { params: { query: { org_path: here.path, campaign_id: campaignId } } })
      .then((res) => {
        const d = ok(res);
        setData(d);
        setTrail((tr) => tr.map((x, i) => (i === tr.length - 1 ? { ...x, name: d.self.name } : x)));
      })
      .catch((e: unknown) => setError(errorText(e)));
  }, [client, campaignId, here?.path]);

  const f = data?.self.figures;
  return (
    <section aria-labelledby="dash-title">
      <h2 id="dash-title">{t("view_dashboard")}</h2>
      <label>
        {t("campaign")}
        <select name="report-campaign" value={campaignId} onChange={(e) => setCampaignId(e.currentTarget.value)}>
          {campaigns?.map((c) => (
            <option key={c.campaign_id} value={c.campaign_id}>
              {c.name ?? c.campaign_id}
            </option>
          ))}
        </select>
      </label>
      <nav aria-label={t("trail")} class="trail">
        {trail.map((x, i) =>
          i === trail.length - 1 ? (
            <span key={x.path} aria-current="page">
              {x.name}
            </span>
          ) : (
            <button key={x.path} type="button" class="secondary" onClick={() => setTrail(trail.slice(0, i + 1))}>
              {x.name}
            </button>
          ),
        )}
      </nav>
      <Status text={error} />
      {f && (
        <dl class="figures" data-org={data.self.org_path} data-completed={f.visits.completed}>
          <div>
            <dt>{t("fig_coverage")}</dt>
            <dd>
              {percent(f.families.coverage)} ({f.families.visited} / {f.families.assigned})
            </dd>
          </div>
          <div>
            <dt>{t("fig_visits")}</dt>
            <dd>{t("fig_visits_value", { completed: f.visits.completed, missed: f.visits.missed })}</dd>
          </div>
          <div>
            <dt>{t("fig_findings")}</dt>
            <dd>{f.findings.total}</dd>
          </div>
          <div>
            <dt>{t("fig_cases")}</dt>
            <dd>
              {t("fig_cases_value", { open: f.cases.open, overdue: f.cases.overdue, pending: f.cases.closure_pending })}
            </dd>
          </div>
          <div>
            <dt>{t("fig_flagged")}</dt>
            <dd>
              {f.requirements.flagged_visits} ({percent(f.requirements.flagged_share)})
            </dd>
          </div>
        </dl>
      )}
      {data && data.children.length > 0 && (
        <Table caption={t("fig_units")}>
          <thead>
            <tr>
              <th scope="col">{t("fig_unit")}</th>
              <th scope="col">{t("fig_coverage")}</th>
              <th scope="col">{t("fig_visits")}</th>
              <th scope="col">{t("fig_findings")}</th>
              <th scope="col">{t("fig_open_cases")}</th>
            </tr>
          </thead>
          <tbody>
            {data.children.map((c: Summary) => (
              <tr key={c.org_path} data-unit={c.org_path}>
                <th scope="row">
                  <button
                    type="button"
                    class="link"
                    onClick={() => setTrail([...trail, { path: c.org_path, name: c.name }])}
                  >
                    {c.name}
                  </button>
                </th>
                <td>{percent(c.figures.families.coverage)}</td>
                <td>{c.figures.visits.completed}</td>
                <td>{c.figures.findings.total}</td>
                <td>{c.figures.cases.open}</td>
              </tr>
            ))}
          </tbody>
        </Table>
      )}
    </section>
  );
}
