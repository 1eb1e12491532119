/** Whether tests run in CI (env CI set to something other than '', '0' or 'false'). */
export const inCI = ((): boolean => {
  const v = process.env.CI;
  return v !== undefined && v !== '' && v !== '0' && v.toLowerCase() !== 'false';
})();
