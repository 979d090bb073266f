// Formatting uses the local zone: a fixed one that is not UTC (+05:30, no summer time)
// makes the tests tell UTC from local time.
process.env.TZ = 'Asia/Kolkata';

module.exports = {
  preset: 'ts-jest',
  testEnvironment: 'node',
  roots: ['<rootDir>/src'],
  testRegex: 'src/__tests__/.*\\.spec\\.ts$',
  transform: {
    '^.+\\.tsx?$': ['ts-jest', { tsconfig: 'tsconfig.test.json' }]
  }
};
