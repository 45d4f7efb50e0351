// Selectors with the importer's ipivSelector in front of the query's own matchers.
{
  // '{sel,m1,m2}' ('' when there is nothing to select on): sep joins the matchers.
  selector(config, matchers=[], sep=',')::
    local all = [m for m in [config.ipivSelector] + matchers if m != ''];
    if all == [] then '' else '{' + std.join(sep, all) + '}',
  // The matchers alone, for a query that writes its own braces.
  matchers(config, matchers=[], sep=', '):: std.join(sep, [m for m in [config.ipivSelector] + matchers if m != '']),
}
