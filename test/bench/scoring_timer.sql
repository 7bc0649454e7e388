-- pg_temp.bench(query, reps): best and median wall time of a query over a few runs, in milliseconds
-- (included by scoring_speed.sql and scoring_leads.sql).
CREATE FUNCTION pg_temp.bench(q text, reps int DEFAULT 3, OUT best_ms numeric, OUT median_ms numeric) LANGUAGE plpgsql AS $$
DECLARE t timestamptz; times numeric[] := '{}';
BEGIN
    FOR i IN 1 .. reps LOOP
        t := clock_timestamp();
        EXECUTE q;
        times := times || round(extract(epoch FROM clock_timestamp() - t)::numeric * 1000, 2);
    END LOOP;
    SELECT min(x), percentile_cont(0.5) WITHIN GROUP (ORDER BY x) INTO best_ms, median_ms FROM unnest(times) x;
END $$;
